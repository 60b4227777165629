
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_history.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_shm.h"


static ngx_ws_relay_delivery_t *ngx_ws_relay_delivery_find(uint64_t id);
static void ngx_ws_relay_delivery_check(ngx_ws_relay_delivery_t *d);
static void ngx_ws_relay_delivery_complete(ngx_ws_relay_delivery_t *d);
static void ngx_ws_relay_delivery_timeout(ngx_event_t *ev);


/* deliveries waiting for acks, by id */
static ngx_rbtree_t       ngx_ws_relay_deliveries;
static ngx_rbtree_node_t  ngx_ws_relay_deliveries_sentinel;
static uint64_t           ngx_ws_relay_next_delivery;
static time_t             ngx_ws_relay_timeout_logged;


void
ngx_ws_relay_delivery_init(void)
{
    ngx_rbtree_init(&ngx_ws_relay_deliveries,
                    &ngx_ws_relay_deliveries_sentinel,
                    ngx_rbtree_insert_value);
}


ngx_ws_relay_delivery_t *
ngx_ws_relay_delivery_create(ngx_ws_relay_delivery_pt handler, void *data,
    ngx_str_t *user_id, ngx_log_t *log)
{
    ngx_ws_relay_delivery_t  *d;

    /* the user id right behind the struct: one allocation */

    d = ngx_calloc(sizeof(ngx_ws_relay_delivery_t) + user_id->len, log);
    if (d == NULL) {
        return NULL;
    }

    d->expected = -1;
    d->handler = handler;
    d->data = data;

    d->user_id.data = (u_char *) (d + 1);
    d->user_id.len = user_id->len;
    ngx_memcpy(d->user_id.data, user_id->data, user_id->len);

    /* the sender's log: debug_connection follows its messages */
    d->log = log;

    d->timer.handler = ngx_ws_relay_delivery_timeout;
    d->timer.data = d;
    d->timer.log = log;
    d->timer.cancelable = 1;

    return d;
}


/* text: the message as it goes out; NULL: it could not be built */

void
ngx_ws_relay_delivery_start(ngx_ws_relay_delivery_t *d, ngx_str_t *text)
{
    uint64_t    id;
    ngx_int_t   rc;
    ngx_uint_t  stored;

    ngx_ws_relay_stat_add(deliveries, 1);

    if (text == NULL) {
        ngx_ws_relay_delivery_complete(d);
        return;
    }

    id = ++ngx_ws_relay_next_delivery;
    d->id = id;

    if (d->history) {
        /* kept for this worker's copies, should the script fail */
        d->text.data = ngx_alloc(text->len, d->log);
        if (d->text.data == NULL) {
            d->history = NULL;

        } else {
            ngx_memcpy(d->text.data, text->data, text->len);
            d->text.len = text->len;
        }
    }

    rc = ngx_ws_relay_bus_publish(&d->user_id, text, id, d->history,
                                  &stored);

    if (!stored) {
        d->delivered = ngx_ws_relay_delivery_local(&d->user_id, text, NULL);
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, d->log, 0,
                   "ws relay: delivery %uL to \"%V\": %uz bytes, "
                   "%ui local connections%s", id, &d->user_id, text->len,
                   d->delivered, stored ? " when stored" : "");

    if (rc != NGX_OK || (d->any && d->delivered)) {
        /* the other workers' acks are not needed, nor awaited */
        ngx_ws_relay_delivery_complete(d);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, d->log, 0,
                   "ws relay: delivery %uL published, awaiting acks", id);

    d->node.key = (ngx_rbtree_key_t) id;
    ngx_rbtree_insert(&ngx_ws_relay_deliveries, &d->node);
    d->pending = 1;

    ngx_add_timer(&d->timer, ngx_ws_relay_worker.main_conf->redis.ack_timeout);
}


/*
 * Every connection of the user on this worker gets the text (hid: its id
 * in the history); one that is not live yet has it held.
 */

ngx_uint_t
ngx_ws_relay_delivery_local(ngx_str_t *user_id, ngx_str_t *text,
    ngx_str_t *hid)
{
    ngx_uint_t              n;
    ngx_queue_t            *q;
    ngx_ws_relay_conn_t    *wc;
    ngx_ws_relay_user_t    *user;
    ngx_ws_relay_message_t  m;

    user = ngx_ws_relay_registry_find_user(user_id);
    if (user == NULL) {
        return 0;
    }

    if (hid) {
        /* where the worker is in the user's history */
        ngx_ws_relay_history_heard(user, hid);
    }

    n = 0;
    m.text = *text;
    m.window_bits = 0;

    for (q = ngx_queue_head(&user->connections);
         q != ngx_queue_sentinel(&user->connections);
         q = ngx_queue_next(q))
    {
        wc = ngx_queue_data(q, ngx_ws_relay_conn_t, user_queue);

        if (wc->resume) {
            if (ngx_ws_relay_history_hold(wc, text, hid) == NGX_OK) {
                n++;
            }

            continue;
        }

        if (hid && !ngx_ws_relay_history_new(wc, hid)) {
            /* a replay had it: the client has it */
            n++;
            continue;
        }

        if (ngx_ws_relay_conn_send_message(wc, &m) == NGX_OK) {
            n++;
        }
    }

    return n;
}


/* PUBLISH answered: this many workers got the message (-1: it failed) */

void
ngx_ws_relay_delivery_published(uint64_t id, ngx_int_t receivers)
{
    ngx_ws_relay_delivery_t  *d;

    d = ngx_ws_relay_delivery_find(id);
    if (d == NULL) {
        return;
    }

    d->expected = ngx_max(receivers, 0);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, d->log, 0,
                   "ws relay: delivery %uL: PUBLISH reached %i workers",
                   id, receivers);

    ngx_ws_relay_delivery_check(d);
}


/* the message has its id in the user's history */

void
ngx_ws_relay_delivery_stored(uint64_t id, ngx_str_t *hid)
{
    ngx_ws_relay_delivery_t  *d;

    d = ngx_ws_relay_delivery_find(id);
    if (d == NULL || d->stored) {
        return;
    }

    d->stored = 1;
    d->hid.len = ngx_min(hid->len, NGX_WS_RELAY_ID_LEN);
    ngx_memcpy(d->hid.data, hid->data, d->hid.len);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, d->log, 0,
                   "ws relay: delivery %uL stored as \"%V\"", id, hid);
}


/*
 * The history script failed, or its reply was lost with the link.  Unless
 * the publication came back (the script ran), this worker's connections
 * get the message now, without an id.
 */

void
ngx_ws_relay_delivery_unstored(uint64_t id)
{
    ngx_ws_relay_delivery_t  *d;

    ngx_ws_relay_stat_add(history_failed, 1);

    d = ngx_ws_relay_delivery_find(id);
    if (d == NULL) {
        return;
    }

    if (!d->stored && d->text.len) {
        d->delivered += ngx_ws_relay_delivery_local(&d->user_id, &d->text,
                                                    NULL);
    }

    ngx_ws_relay_delivery_complete(d);
}


void
ngx_ws_relay_delivery_acked(uint64_t id, ngx_uint_t delivered)
{
    ngx_ws_relay_delivery_t  *d;

    d = ngx_ws_relay_delivery_find(id);
    if (d == NULL) {
        return;
    }

    d->acks++;
    d->delivered += delivered;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, d->log, 0,
                   "ws relay: delivery %uL: ack %ui with %ui connections",
                   id, d->acks, delivered);

    ngx_ws_relay_delivery_check(d);
}


/*
 * The owner of a queue of deliveries (a connection) is going: those that
 * are done are freed, the others finish without it.
 */

void
ngx_ws_relay_delivery_abandon(ngx_queue_t *queue)
{
    ngx_queue_t              *q;
    ngx_ws_relay_delivery_t  *d;

    while (!ngx_queue_empty(queue)) {
        q = ngx_queue_head(queue);
        ngx_queue_remove(q);

        d = ngx_queue_data(q, ngx_ws_relay_delivery_t, queue);

        if (d->done) {
            ngx_ws_relay_delivery_free(d);

        } else {
            /* the owner's log goes with it */
            d->data = NULL;
            d->log = ngx_cycle->log;
            d->timer.log = ngx_cycle->log;
        }
    }
}


/*
 * What a sender with history learns: "queued", kept and received by no
 * connection now (a resume will bring it), and the id when it was kept.
 */

u_char *
ngx_ws_relay_delivery_write_queued(u_char *p, ngx_ws_relay_delivery_t *d)
{
    p = ngx_sprintf(p, ",\"queued\":%s",
                    (d->stored && d->delivered == 0) ? "true" : "false");

    if (d->stored) {
        p = ngx_sprintf(p, ",\"id\":\"%*s\"", d->hid.len, d->hid.data);
    }

    return p;
}


void
ngx_ws_relay_delivery_free(ngx_ws_relay_delivery_t *d)
{
    if (d->text.data) {
        ngx_free(d->text.data);
    }

    ngx_free(d);
}


static ngx_ws_relay_delivery_t *
ngx_ws_relay_delivery_find(uint64_t id)
{
    ngx_rbtree_key_t    key;
    ngx_rbtree_node_t  *node, *sentinel;

    key = (ngx_rbtree_key_t) id;
    node = ngx_ws_relay_deliveries.root;
    sentinel = ngx_ws_relay_deliveries.sentinel;

    while (node != sentinel) {

        if (key == node->key) {
            return (ngx_ws_relay_delivery_t *) node;
        }

        node = (key < node->key) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_ws_relay_delivery_check(ngx_ws_relay_delivery_t *d)
{
    /*
     * A kept message's reply carries its id: an ack of another worker that
     * comes before the script's reply (the two travel on different links)
     * does not end it.
     */

    if ((d->expected >= 0 && d->acks >= (ngx_uint_t) d->expected)
        || (d->any && d->delivered && (d->history == NULL || d->expected >= 0)))
    {
        ngx_ws_relay_delivery_complete(d);
    }
}


static void
ngx_ws_relay_delivery_complete(ngx_ws_relay_delivery_t *d)
{
    if (d->pending) {
        ngx_rbtree_delete(&ngx_ws_relay_deliveries, &d->node);
        d->pending = 0;
    }

    if (d->timer.timer_set) {
        ngx_del_timer(&d->timer);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, d->log, 0,
                   "ws relay: delivery %uL done: %ui delivered",
                   d->id, d->delivered);

    if (d->text.data) {
        ngx_free(d->text.data);
        ngx_str_null(&d->text);
    }

    d->done = 1;
    d->handler(d);
}


static void
ngx_ws_relay_delivery_timeout(ngx_event_t *ev)
{
    ngx_ws_relay_delivery_t  *d = ev->data;

    ngx_ws_relay_stat_add(delivery_timeouts, 1);

    /* at most one line a second: a stalled Redis would flood the log */

    if (ngx_time() != ngx_ws_relay_timeout_logged) {
        ngx_ws_relay_timeout_logged = ngx_time();

        if (d->expected < 0) {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "ws relay: a delivery got no PUBLISH reply in time "
                          "(%uA deliveries timed out so far)",
                          ngx_ws_relay_slot->delivery_timeouts);

        } else {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "ws relay: a delivery got %ui of %i acks in time "
                          "(%uA deliveries timed out so far)",
                          d->acks, d->expected,
                          ngx_ws_relay_slot->delivery_timeouts);
        }
    }

    ngx_ws_relay_delivery_complete(d);
}

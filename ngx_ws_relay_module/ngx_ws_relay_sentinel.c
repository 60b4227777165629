
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_redis_link.h"
#include "ngx_ws_relay_sentinel.h"


/* the master is asked for again this often, should a switch go unheard */
#define NGX_WS_RELAY_SENTINEL_ASK_EVERY  5000


typedef struct {
    ngx_ws_relay_redis_conf_t       *conf;
    ngx_ws_relay_redis_endpoint_t   *master;
    ngx_ws_relay_sentinel_pt         changed;

    /* commands, and "+switch-master", each with a sentinel of the list */
    ngx_ws_relay_redis_link_t        cmd;
    ngx_ws_relay_redis_link_t        sub;
    ngx_uint_t                       next;

    ngx_msec_t                       asked;
    unsigned                         asking:1;
} ngx_ws_relay_sentinel_t;


static void ngx_ws_relay_sentinel_cmd_connected(
    ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_sentinel_sub_connected(
    ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_sentinel_lost(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_sentinel_answer(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_sentinel_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_sentinel_master(ngx_str_t *host, ngx_str_t *port);


static ngx_ws_relay_sentinel_t  ngx_ws_relay_sentinel;


ngx_int_t
ngx_ws_relay_sentinel_init(ngx_cycle_t *cycle, ngx_ws_relay_redis_conf_t *rcf,
    ngx_ws_relay_redis_endpoint_t *master, ngx_ws_relay_sentinel_pt changed)
{
    ngx_ws_relay_sentinel_t  *s;

    s = &ngx_ws_relay_sentinel;

    s->conf = rcf;
    s->master = master;
    s->changed = changed;

    /* workers start with sentinels of their own: not all on the first */
    s->next = ngx_random() % rcf->sentinels->nelts;

    s->cmd.name = "sentinel";
    s->cmd.endpoint = (ngx_ws_relay_redis_endpoint_t *) rcf->sentinels->elts
                      + s->next;
    s->cmd.conf = rcf;
    s->cmd.log = cycle->log;
    s->cmd.connected = ngx_ws_relay_sentinel_cmd_connected;
    s->cmd.lost = ngx_ws_relay_sentinel_lost;
    s->cmd.sentinel = 1;

    s->sub = s->cmd;
    s->sub.name = "sentinel subscriber";
    s->sub.connected = ngx_ws_relay_sentinel_sub_connected;
    s->sub.subscriber = 1;

    ngx_ws_relay_redis_link_connect(&s->cmd);
    ngx_ws_relay_redis_link_connect(&s->sub);

    return NGX_OK;
}


void
ngx_ws_relay_sentinel_exit(void)
{
    ngx_ws_relay_sentinel_t  *s;

    s = &ngx_ws_relay_sentinel;

    if (s->conf == NULL) {
        return;
    }

    ngx_ws_relay_redis_link_drop(&s->cmd, NULL);
    ngx_ws_relay_redis_link_drop(&s->sub, NULL);
}


static void
ngx_ws_relay_sentinel_cmd_connected(ngx_ws_relay_redis_link_t *link)
{
    ngx_ws_relay_sentinel.asking = 0;
    ngx_ws_relay_sentinel_ask();
}


static void
ngx_ws_relay_sentinel_sub_connected(ngx_ws_relay_redis_link_t *link)
{
    (void) redisAsyncCommand(link->ac, ngx_ws_relay_sentinel_message, NULL,
                             "SUBSCRIBE +switch-master");
}


/* a sentinel that fails: the next one of the list */

static void
ngx_ws_relay_sentinel_lost(ngx_ws_relay_redis_link_t *link)
{
    ngx_ws_relay_sentinel_t  *s;

    s = &ngx_ws_relay_sentinel;

    if (link == &s->cmd) {
        s->asking = 0;
    }

    s->next = (s->next + 1) % s->conf->sentinels->nelts;
    link->endpoint = (ngx_ws_relay_redis_endpoint_t *)
                         s->conf->sentinels->elts + s->next;
}


/* SENTINEL get-master-addr-by-name, unless an answer is on its way */

void
ngx_ws_relay_sentinel_ask(void)
{
    ngx_ws_relay_sentinel_t  *s;

    s = &ngx_ws_relay_sentinel;

    if (s->conf == NULL || s->cmd.ac == NULL || s->asking) {
        return;
    }

    if (ngx_ws_relay_redis_link_command(&s->cmd,
                                        ngx_ws_relay_sentinel_answer,
                                        &s->cmd,
                                        "SENTINEL get-master-addr-by-name %b",
                                        s->conf->master.data,
                                        s->conf->master.len)
        == NGX_OK)
    {
        s->asking = 1;
        s->asked = ngx_current_msec;
    }
}


/* the owner's watchdog: stalled sentinels are cut, the master asked for */

void
ngx_ws_relay_sentinel_tick(ngx_msec_t now)
{
    ngx_ws_relay_sentinel_t  *s;

    s = &ngx_ws_relay_sentinel;

    if (s->conf == NULL) {
        return;
    }

    ngx_ws_relay_redis_link_check(&s->cmd, now);
    ngx_ws_relay_redis_link_check(&s->sub, now);

    if (now - s->asked >= NGX_WS_RELAY_SENTINEL_ASK_EVERY) {
        ngx_ws_relay_sentinel_ask();
    }
}


static void
ngx_ws_relay_sentinel_answer(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                 *reply = r;
    ngx_ws_relay_redis_link_t  *link = privdata;

    ngx_str_t  host, port;

    if (reply == NULL || link->ac != ac) {
        return;
    }

    ngx_ws_relay_sentinel.asking = 0;
    ngx_ws_relay_redis_link_replied(link);

    if (ngx_ws_relay_redis_link_is_error(link, reply, "SENTINEL")) {
        ngx_ws_relay_redis_link_drop(link, "not usable");
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        /* nil: this sentinel does not know the master (yet) */
        ngx_ws_relay_redis_error(link->log, "redis sentinel does not name "
                                 "master \"%V\"", &ngx_ws_relay_sentinel.conf
                                                   ->master);
        ngx_ws_relay_redis_link_drop(link, "no master");
        return;
    }

    if (!link->ready) {
        ngx_ws_relay_redis_link_ready(link);
    }

    host.data = (u_char *) reply->element[0]->str;
    host.len = reply->element[0]->len;
    port.data = (u_char *) reply->element[1]->str;
    port.len = reply->element[1]->len;

    ngx_ws_relay_sentinel_master(&host, &port);
}


/* "+switch-master": "<master> <old ip> <old port> <new ip> <new port>" */

static void
ngx_ws_relay_sentinel_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    u_char                   *p, *last;
    ngx_str_t                 f[5];
    ngx_uint_t                i;
    ngx_ws_relay_sentinel_t  *s;

    s = &ngx_ws_relay_sentinel;

    if (reply == NULL || s->sub.ac != ac || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    s->sub.progress = ngx_current_msec;

    if (reply->element[0]->len == 9
        && ngx_strncmp(reply->element[0]->str, "subscribe", 9) == 0)
    {
        ngx_ws_relay_redis_link_ready(&s->sub);
        return;
    }

    if (reply->element[2]->type != REDIS_REPLY_STRING) {
        return;
    }

    p = (u_char *) reply->element[2]->str;
    last = p + reply->element[2]->len;

    for (i = 0; i < 5; i++) {
        f[i].data = p;
        p = ngx_strlchr(p, last, ' ');

        if (p == NULL) {
            p = last;
        }

        f[i].len = p - f[i].data;

        if (p < last) {
            p++;
        }
    }

    if (f[0].len != s->conf->master.len
        || ngx_strncmp(f[0].data, s->conf->master.data, f[0].len) != 0
        || f[4].len == 0)
    {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, s->sub.log, 0,
                  "ws relay: redis sentinel: master \"%V\" switched to "
                  "%V:%V", &s->conf->master, &f[3], &f[4]);

    ngx_ws_relay_sentinel_master(&f[3], &f[4]);
}


static void
ngx_ws_relay_sentinel_master(ngx_str_t *host, ngx_str_t *port)
{
    ngx_int_t                       n;
    ngx_ws_relay_redis_endpoint_t  *m;

    m = ngx_ws_relay_sentinel.master;
    n = ngx_atoi(port->data, port->len);

    if (n <= 0 || n > 65535 || host->len == 0
        || host->len > NGX_SOCKADDR_STRLEN)
    {
        ngx_ws_relay_redis_error(ngx_ws_relay_sentinel.cmd.log,
                                 "redis sentinel named an invalid master "
                                 "address \"%V:%V\"", host, port);
        return;
    }

    if (m->host.len == host->len && m->port == n
        && ngx_strncmp(m->host.data, host->data, host->len) == 0)
    {
        return;
    }

    ngx_memcpy(m->host.data, host->data, host->len);
    m->host.data[host->len] = '\0';
    m->host.len = host->len;
    m->port = n;

    ngx_ws_relay_sentinel.changed();
}

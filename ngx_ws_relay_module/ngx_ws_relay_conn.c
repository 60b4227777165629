
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_deflate.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"
#include "ngx_ws_relay_shm.h"


#define NGX_WS_RELAY_READ_BUFFER   65536
/* reads in a row before a busy client yields to the others */
#define NGX_WS_RELAY_READS_IN_ROW  8
/*
 * The work one read event may do before the client yields to the others:
 * a frame costs NGX_WS_RELAY_FRAME_COST, a message (or a control frame)
 * NGX_WS_RELAY_MESSAGE_COST more, plus its bytes once inflated.
 */
#define NGX_WS_RELAY_FRAME_COST    64
#define NGX_WS_RELAY_MESSAGE_COST  1024
#define NGX_WS_RELAY_READ_BUDGET   (1024 * 1024)

#define ngx_ws_relay_conn_spend(cost)                                         \
    ngx_ws_relay_read_budget -= ngx_min((size_t) (cost),                      \
                                        ngx_ws_relay_read_budget)


static void ngx_ws_relay_conn_attached_handler(ngx_event_t *ev);
static void ngx_ws_relay_conn_detach(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_conn_free_buffers(ngx_connection_t *c,
    ngx_chain_t *cl);
static u_char *ngx_ws_relay_conn_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_ws_relay_conn_read_handler(ngx_event_t *rev);
static void ngx_ws_relay_conn_write_handler(ngx_event_t *wev);
static void ngx_ws_relay_conn_shutdown(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_conn_drained(ngx_event_t *ev);
static ngx_int_t ngx_ws_relay_conn_process(ngx_ws_relay_conn_t *wc,
    u_char *pos, u_char *last);
static ngx_int_t ngx_ws_relay_conn_keep(ngx_ws_relay_conn_t *wc, u_char *pos,
    u_char *last, ngx_uint_t later);
static void ngx_ws_relay_conn_data(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_frame_event_t *ev);
static void ngx_ws_relay_conn_message(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_frame_event_t *ev, u_char *data, size_t len);
static ngx_int_t ngx_ws_relay_conn_send_frame(ngx_ws_relay_conn_t *wc,
    ngx_uint_t opcode, ngx_uint_t flags, u_char *data, size_t len);
static void ngx_ws_relay_conn_control(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_frame_event_t *ev);
static ngx_int_t ngx_ws_relay_conn_heartbeat(ngx_ws_relay_conn_t *wc);
static u_char *ngx_ws_relay_conn_reserve(ngx_ws_relay_conn_t *wc,
    size_t len);
static ngx_int_t ngx_ws_relay_conn_flush(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_conn_post_write(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_conn_finalize(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_conn_cleanup(void *data);
static void ngx_ws_relay_conn_release(ngx_ws_relay_conn_t *wc);


/* one read buffer for all connections of the worker */
static u_char  *ngx_ws_relay_read_buffer;

/* what the read event being handled may still spend */
static size_t   ngx_ws_relay_read_budget;


/*
 * Takes the connection over after the 101.  Until the rest of the 101 is
 * sent and the call stack of the request has unwound, the request stays
 * attached (c->data is the request); then the connection is detached from
 * it, the way nginx parks a keepalive connection: the request, its pool
 * and the header buffers are freed and c->data is wc.  An idle connection
 * keeps the connection pool and wc only.  With keep_request the request
 * is freed when the connection closes instead.
 */

ngx_int_t
ngx_ws_relay_conn_start(ngx_http_request_t *r, ngx_ws_relay_loc_conf_t *wlcf,
    ngx_uint_t deflate_bits, ngx_str_t *user_id)
{
    size_t                     size;
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_pool_cleanup_t        *cln;
    ngx_ws_relay_conn_t       *wc;
    ngx_http_core_loc_conf_t  *clcf;

    c = r->connection;

    if (ngx_ws_relay_read_buffer == NULL) {
        ngx_ws_relay_read_buffer = ngx_alloc(NGX_WS_RELAY_READ_BUFFER,
                                             ngx_cycle->log);
        if (ngx_ws_relay_read_buffer == NULL) {
            return NGX_ERROR;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    /* the connection id lives right behind wc */

    size = ngx_ws_relay_worker.node_id.len + 1 + NGX_INT_T_LEN;

    wc = ngx_calloc(sizeof(ngx_ws_relay_conn_t) + size, c->log);
    if (wc == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_ws_relay_conn_cleanup;
    cln->data = wc;

    /*
     * Another module tied state to the request's lifetime (limit_conn
     * counts it, realip restores the address when it ends): the request
     * then lives as long as the connection, as with a proxied WebSocket.
     */
    wc->keep_request = (cln->next != NULL || r->cleanup != NULL);

    wc->request = r;
    wc->connection = c;
    wc->conf = wlcf;
    wc->alive = 1;
    wc->start = ngx_current_msec;
    wc->limit_last = ngx_current_msec;
    ngx_queue_init(&wc->deliveries);

    wc->id.data = (u_char *) &wc[1];
    wc->id.len = ngx_sprintf(wc->id.data, "%V-%ui",
                             &ngx_ws_relay_worker.node_id,
                             ++ngx_ws_relay_worker.next_connection)
                 - wc->id.data;

    ngx_ws_relay_frame_parser_init(&wc->parser, wlcf->max_message_size);

    if (deflate_bits) {
        wc->deflate_bits = deflate_bits;
        wc->parser.rsv1_allowed = 1;
    }

    ngx_http_set_ctx(r, wc, ngx_ws_relay_module);

    r->main->count++;

    c->log->action = "relaying WebSocket messages";

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* small frames must not wait for the peer's delayed ACKs */
    if (clcf->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        return NGX_ERROR;
    }

    c->read->handler = ngx_ws_relay_conn_attached_handler;
    c->write->handler = ngx_ws_relay_conn_attached_handler;

    /* nginx calls back idle connections when the worker shuts down */
    c->idle = 1;

    rc = ngx_ws_relay_router_open(wc, user_id);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        /* refused: the close goes out, nothing the client sent is read */
        return NGX_DONE;
    }

    if (wlcf->heartbeat) {
        c->read->cancelable = 1;
        ngx_add_timer(c->read, wlcf->heartbeat);
    }

    /* frames the client sent right behind the handshake */

    if (r->header_in->pos < r->header_in->last) {
        ngx_ws_relay_read_budget = NGX_WS_RELAY_READ_BUDGET;

        rc = ngx_ws_relay_conn_process(wc, r->header_in->pos,
                                       r->header_in->last);
        r->header_in->pos = r->header_in->last;

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the detach runs from the posted write event, after this call */
    if (!c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_DONE;
}


/*
 * Both events of a connection still attached to its request: finishes
 * sending the 101, detaches, then hands the event to its own handler.
 */

static void
ngx_ws_relay_conn_attached_handler(ngx_event_t *ev)
{
    ngx_connection_t     *c;
    ngx_http_request_t   *r;
    ngx_ws_relay_conn_t  *wc;

    c = ev->data;
    r = c->data;
    wc = ngx_http_get_module_ctx(r, ngx_ws_relay_module);

    if (ev->write && ev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "ws relay: close handshake timed out");
        ngx_ws_relay_conn_finalize(wc);
        return;
    }

    if (r->out) {
        /* the rest of the 101 response */
        if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
            ngx_ws_relay_conn_finalize(wc);
            return;
        }

        if (r->out) {
            /* a read or a heartbeat waits: detach posts them */
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ngx_ws_relay_conn_finalize(wc);
            }

            return;
        }
    }

    ngx_ws_relay_conn_detach(wc);

    if (ev->posted) {
        ngx_delete_posted_event(ev);
    }

    /*
     * Called directly, not posted: on shutdown nginx calls idle
     * connections outside the event loop's pass.
     */
    ev->handler(ev);
}


static void
ngx_ws_relay_conn_detach(ngx_ws_relay_conn_t *wc)
{
    ngx_buf_t              *b;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_connection_t  *hc;

    r = wc->request;
    c = wc->connection;
    hc = r->http_connection;

    c->data = wc;
    c->read->handler = ngx_ws_relay_conn_read_handler;
    c->write->handler = ngx_ws_relay_conn_write_handler;

    if ((c->read->ready || c->read->timedout) && !c->read->posted) {
        ngx_post_event(c->read, &ngx_posted_events);
    }

    if (wc->out_pos < wc->out_last) {
        ngx_ws_relay_conn_post_write(wc);
    }

    if (wc->keep_request) {
        /* freed by ngx_ws_relay_conn_finalize() */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "ws relay: the request stays with the connection");
        return;
    }

    /* the pool cleanup of the request leaves wc alone from now on */
    wc->request = NULL;

    /* the access log line is written here, with the 101 */
    ngx_http_free_request(r, 0);

    c->destroyed = 0;

    /* the header buffers, as nginx frees them for keepalive */

    b = c->buffer;

    if (b && ngx_pfree(c->pool, b->start) == NGX_OK) {
        c->buffer = NULL;
    }

    ngx_ws_relay_conn_free_buffers(c, hc->free);
    hc->free = NULL;

    ngx_ws_relay_conn_free_buffers(c, hc->busy);
    hc->busy = NULL;
    hc->nbusy = 0;

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        ngx_ssl_free_buffer(c);
    }
#endif

    c->log->handler = ngx_ws_relay_conn_log_error;
    c->log->action = "relaying WebSocket messages";
}


/* nginx's large header buffers, allocated outside the connection pool */

static void
ngx_ws_relay_conn_free_buffers(ngx_connection_t *c, ngx_chain_t *cl)
{
    ngx_chain_t  *ln;

    while (cl) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }
}


/* the context of the error log lines of a detached connection */

static u_char *
ngx_ws_relay_conn_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char               *p;
    uintptr_t             escape;
    ngx_str_t            *user;
    ngx_connection_t     *c;
    ngx_http_log_ctx_t   *ctx;
    ngx_ws_relay_conn_t  *wc;

    p = buf;

    if (log->action) {
        p = ngx_snprintf(p, len, " while %s", log->action);
        len -= p - buf;
        buf = p;
    }

    ctx = log->data;
    c = ctx->connection;

    p = ngx_snprintf(p, len, ", client: %V, server: %V",
                     &c->addr_text, &c->listening->addr_text);
    len -= p - buf;
    buf = p;

    /* NULL once the connection is being closed */
    wc = c->data;

    if (wc == NULL) {
        return p;
    }

    p = ngx_snprintf(p, len, ", connection: %V", &wc->id);
    len -= p - buf;

    if (wc->user == NULL) {
        return p;
    }

    /* user ids are the clients' strings: escaped, never cut in the middle */

    user = &wc->user->sn.str;
    escape = 2 * ngx_escape_uri(NULL, user->data, user->len,
                                NGX_ESCAPE_URI_COMPONENT);

    if (sizeof(", user: \"\"") - 1 + user->len + escape > len) {
        return p;
    }

    p = ngx_cpymem(p, ", user: \"", sizeof(", user: \"") - 1);

    if (escape) {
        p = (u_char *) ngx_escape_uri(p, user->data, user->len,
                                      NGX_ESCAPE_URI_COMPONENT);
    } else {
        p = ngx_cpymem(p, user->data, user->len);
    }

    *p++ = '"';

    return p;
}


static void
ngx_ws_relay_conn_read_handler(ngx_event_t *rev)
{
    ssize_t               n;
    ngx_int_t             rc;
    ngx_uint_t            reads;
    ngx_connection_t     *c;
    ngx_ws_relay_conn_t  *wc;

    c = rev->data;
    wc = c->data;

    if (wc->peer_closed) {
        /* the write handler finishes the connection */
        return;
    }

    if (c->close) {
        c->close = 0;
        c->idle = 0;
        ngx_ws_relay_conn_shutdown(wc);
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;

        if (ngx_ws_relay_conn_heartbeat(wc) != NGX_OK) {
            ngx_ws_relay_conn_finalize(wc);
            return;
        }
    }

    if (wc->resume) {
        /* joining the user: ngx_ws_relay_conn_read_on() comes back */
        return;
    }

    if (wc->yield) {
        /*
         * Back from the next pass, where nginx put this event before what
         * epoll found: what the others were posted since (replies to send)
         * goes first.
         */
        wc->yield = 0;
        ngx_post_event(rev, &ngx_posted_events);
        return;
    }

    ngx_ws_relay_read_budget = NGX_WS_RELAY_READ_BUDGET;

    if (wc->in) {
        /* what the last read event left for later */

        rc = ngx_ws_relay_conn_process(wc, wc->in + wc->in_pos,
                                       wc->in + wc->in_last);
        if (rc == NGX_ERROR) {
            ngx_ws_relay_conn_finalize(wc);
            return;
        }

        if (rc == NGX_AGAIN) {
            return;
        }
    }

    for (reads = 0; rev->ready; /* void */) {

        n = c->recv(c, ngx_ws_relay_read_buffer, NGX_WS_RELAY_READ_BUFFER);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            ngx_ws_relay_conn_finalize(wc);
            return;
        }

        if (n == 0) {
            /* the peer is done sending: what is queued still goes out */
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                           "ws relay: peer closed its side");

            wc->read_closed = 1;
            wc->peer_closed = 1;

            if (rev->timer_set) {
                ngx_del_timer(rev);
            }

            if (!c->write->timer_set) {
                ngx_add_timer(c->write, ngx_ws_relay_worker.main_conf
                                        ->close_timeout);
            }

            ngx_ws_relay_conn_write_handler(c->write);
            return;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "ws relay: %z bytes read", n);

        wc->alive = 1;
        ngx_ws_relay_stat_add(bytes_in, n);

        rc = ngx_ws_relay_conn_process(wc, ngx_ws_relay_read_buffer,
                                       ngx_ws_relay_read_buffer + n);

        if (rc == NGX_ERROR) {
            ngx_ws_relay_conn_finalize(wc);
            return;
        }

        if (rc == NGX_AGAIN) {
            return;
        }

        if (++reads == NGX_WS_RELAY_READS_IN_ROW && rev->ready) {
            /* the next pass: epoll and the timers come first */
            ngx_post_event(rev, &ngx_posted_next_events);
            return;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_ws_relay_conn_finalize(wc);
    }
}


/* the connection joined its user: what it sent meanwhile is read now */

void
ngx_ws_relay_conn_read_on(ngx_ws_relay_conn_t *wc)
{
    ngx_event_t  *rev;

    rev = wc->connection->read;

    if (!rev->posted) {
        ngx_post_event(rev, &ngx_posted_events);
    }
}


/*
 * The worker is shutting down: close 1001, at once, or with ws_relay_drain
 * at a random moment of the drain window, so that the clients do not all
 * come back to the new workers in the same instant.  The window stays
 * within three quarters of worker_shutdown_timeout; when that timer
 * closes the connections (c->error), they close at once.
 */

static void
ngx_ws_relay_conn_shutdown(ngx_ws_relay_conn_t *wc)
{
    ngx_msec_t         window;
    ngx_event_t       *ev;
    ngx_core_conf_t   *ccf;
    ngx_connection_t  *c;

    c = wc->connection;
    window = ngx_ws_relay_worker.main_conf->drain;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    if (ccf->shutdown_timeout) {
        window = ngx_min(window, ccf->shutdown_timeout / 4 * 3);
    }

    if (window && wc->drain == NULL && !c->error && !wc->closing) {

        ev = ngx_pcalloc(c->pool, sizeof(ngx_event_t));

        if (ev) {
            ev->handler = ngx_ws_relay_conn_drained;
            ev->data = wc;
            ev->log = c->log;

            /* not cancelable: the worker waits for it */
            wc->drain = ev;
            ngx_add_timer(ev, (ngx_msec_t) ngx_random() % window);
            return;
        }
    }

    /*
     * This call may come from outside the event loop's pass, so nothing
     * would run a posted write event until the next event or timer: the
     * close frame is flushed now.
     */

    ngx_ws_relay_conn_close(wc, NGX_WS_RELAY_CLOSE_GOING_AWAY,
                            "server shutting down");
    ngx_ws_relay_conn_write_handler(c->write);
}


static void
ngx_ws_relay_conn_drained(ngx_event_t *ev)
{
    ngx_ws_relay_conn_t  *wc = ev->data;

    ngx_ws_relay_conn_shutdown(wc);
}


/*
 * Frames, as long as the read event's budget lasts.  NGX_AGAIN: it ran
 * out; what is left waits in wc->in, and the read event comes back after
 * the other connections had their turn.  While the connection joins its
 * user (wc->resume), its next messages wait, unread, in wc->in.
 */

static ngx_int_t
ngx_ws_relay_conn_process(ngx_ws_relay_conn_t *wc, u_char *pos, u_char *last)
{
    ngx_int_t                   rc;
    ngx_ws_relay_frame_event_t  ev;

    while (!wc->read_closed) {

        if (wc->resume && pos < last) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                           "ws relay: joining the user, %uz bytes wait",
                           last - pos);

            return ngx_ws_relay_conn_keep(wc, pos, last, 0);
        }

        if (ngx_ws_relay_read_budget == 0 && pos < last) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                           "ws relay: read budget spent, %uz bytes wait",
                           last - pos);

            return ngx_ws_relay_conn_keep(wc, pos, last, 1);
        }

        rc = ngx_ws_relay_frame_parse(&wc->parser, &pos, last, &ev);

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_ERROR) {
            ngx_ws_relay_conn_fail(wc, wc->parser.error_code,
                                   wc->parser.error);
            break;
        }

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                       "ws relay: frame opcode:%ui len:%uz first:%d last:%d "
                       "compressed:%d", ev.opcode, ev.len, ev.first, ev.last,
                       ev.compressed);

        ngx_ws_relay_conn_spend(NGX_WS_RELAY_FRAME_COST);

        if (ev.type == NGX_WS_RELAY_FRAME_CONTROL) {
            ngx_ws_relay_conn_spend(NGX_WS_RELAY_MESSAGE_COST);
            ngx_ws_relay_conn_control(wc, &ev);

        } else {
            ngx_ws_relay_conn_data(wc, &ev);
        }
    }

    if (wc->in) {
        ngx_free(wc->in);
        wc->in = NULL;
    }

    return NGX_OK;
}


/*
 * Bytes of the shared read buffer, or of wc->in, kept for the next turn:
 * the next pass (later), or ngx_ws_relay_conn_read_on().
 */

static ngx_int_t
ngx_ws_relay_conn_keep(ngx_ws_relay_conn_t *wc, u_char *pos, u_char *last,
    ngx_uint_t later)
{
    u_char       *in;
    ngx_event_t  *rev;

    if (wc->in && pos >= wc->in && pos <= wc->in + wc->in_last) {
        wc->in_pos = pos - wc->in;

    } else {
        in = ngx_alloc(last - pos, wc->connection->log);
        if (in == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(in, pos, last - pos);

        if (wc->in) {
            ngx_free(wc->in);
        }

        wc->in = in;
        wc->in_pos = 0;
        wc->in_last = last - pos;
    }

    if (!later) {
        return NGX_AGAIN;
    }

    /*
     * Not ngx_posted_events, which nginx empties in a loop: the next pass,
     * after epoll and the timers have run.
     */

    rev = wc->connection->read;

    if (!rev->posted) {
        ngx_post_event(rev, &ngx_posted_next_events);
    }

    wc->yield = 1;

    return NGX_AGAIN;
}


static void
ngx_ws_relay_conn_data(ngx_ws_relay_conn_t *wc, ngx_ws_relay_frame_event_t *ev)
{
    u_char  *p;
    size_t   size;

    if (ev->first) {
        wc->utf8_state = 0;
        wc->message_len = 0;
    }

    /* plain text is checked as it arrives; compressed once inflated */

    if (ev->opcode == NGX_WS_RELAY_OP_TEXT && !ev->compressed
        && ngx_ws_relay_utf8_check(&wc->utf8_state, ev->data, ev->len)
           != NGX_OK)
    {
        ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_INVALID_DATA,
                               "invalid UTF-8 in a text message");
        return;
    }

    if (ev->last && wc->message_len == 0) {
        /* the whole message is in this read: no copy */
        ngx_ws_relay_conn_message(wc, ev, ev->data, ev->len);
        return;
    }

    if (wc->message_len + ev->len > wc->message_size) {
        size = ngx_max(wc->message_size * 2, wc->message_len + ev->len);
        size = ngx_min(size, wc->conf->max_message_size);

        p = ngx_alloc(size, wc->connection->log);
        if (p == NULL) {
            ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_INTERNAL,
                                   "out of memory");
            return;
        }

        if (wc->message) {
            ngx_memcpy(p, wc->message, wc->message_len);
            ngx_free(wc->message);
        }

        wc->message = p;
        wc->message_size = size;
    }

    if (ev->len) {
        ngx_memcpy(wc->message + wc->message_len, ev->data, ev->len);
        wc->message_len += ev->len;
    }

    if (!ev->last) {
        return;
    }

    ngx_ws_relay_conn_message(wc, ev, wc->message, wc->message_len);

    ngx_free(wc->message);
    wc->message = NULL;
    wc->message_len = 0;
    wc->message_size = 0;
}


/* a whole message: inflated if need be, checked, then routed */

static void
ngx_ws_relay_conn_message(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_frame_event_t *ev, u_char *data, size_t len)
{
    ngx_int_t  rc;
    ngx_str_t  text;

    if (ev->compressed) {
        rc = ngx_ws_relay_inflate(data, len, wc->conf->max_message_size,
                                  &text, wc->connection->log);

        if (rc == NGX_DECLINED) {
            ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_TOO_BIG,
                                   "message too big once inflated");
            return;
        }

        if (rc == NGX_ABORT) {
            ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_INTERNAL,
                                   "cannot inflate a message");
            return;
        }

        if (rc != NGX_OK) {
            ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_INVALID_DATA,
                                   "invalid compressed data");
            return;
        }

        data = text.data;
        len = text.len;

        wc->utf8_state = 0;

        if (ev->opcode == NGX_WS_RELAY_OP_TEXT
            && ngx_ws_relay_utf8_check(&wc->utf8_state, data, len)
               != NGX_OK)
        {
            ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_INVALID_DATA,
                                   "invalid UTF-8 in a text message");
            return;
        }
    }

    if (ev->opcode == NGX_WS_RELAY_OP_TEXT
        && !ngx_ws_relay_utf8_complete(wc->utf8_state))
    {
        ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_INVALID_DATA,
                               "invalid UTF-8 in a text message");
        return;
    }

    if (wc->closing) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: message of %uz bytes", len);

    ngx_ws_relay_conn_spend(NGX_WS_RELAY_MESSAGE_COST + len);

    ngx_ws_relay_router_message(wc, data, len);
}


static void
ngx_ws_relay_conn_control(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_frame_event_t *ev)
{
    const char  *error;
    ngx_uint_t   code, error_code;

    switch (ev->opcode) {

    case NGX_WS_RELAY_OP_PING:
        (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_PONG, ev->data,
                                      ev->len);
        return;

    case NGX_WS_RELAY_OP_PONG:
        return;

    default: /* NGX_WS_RELAY_OP_CLOSE */

        if (ngx_ws_relay_frame_parse_close(ev->data, ev->len, &code,
                                           &error_code, &error)
            != NGX_OK)
        {
            ngx_ws_relay_conn_fail(wc, error_code, error);
            return;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                       "ws relay: close %ui received", code);

        wc->close_received = 1;
        wc->read_closed = 1;

        /* echo the code, then close once it is flushed */
        ngx_ws_relay_conn_close(wc, code == NGX_WS_RELAY_CLOSE_NO_STATUS
                                    ? 0 : code, NULL);
        ngx_ws_relay_conn_post_write(wc);
        return;
    }
}


/* the client broke a rule: nothing more is read, the close goes out */

void
ngx_ws_relay_conn_fail(ngx_ws_relay_conn_t *wc, ngx_uint_t code,
    const char *reason)
{
    ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                  "ws relay: client error, closing with %ui: %s",
                  code, reason);

    wc->read_closed = 1;
    ngx_ws_relay_conn_close(wc, code, reason);
}


static ngx_int_t
ngx_ws_relay_conn_heartbeat(ngx_ws_relay_conn_t *wc)
{
    if (wc->closing) {
        return NGX_OK;
    }

    if (!wc->alive) {
        ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                      "ws relay: heartbeat timeout, closing");
        return NGX_ERROR;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: heartbeat ping");

    wc->alive = 0;

    (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_PING, NULL, 0);

    ngx_add_timer(wc->connection->read, wc->conf->heartbeat);

    return NGX_OK;
}


/*
 * Queues a close frame (code 0: an empty one) and starts the close
 * timeout; the connection is finalized by its own handlers once the frame
 * is flushed and the peer has answered, or when the timeout fires.
 */

void
ngx_ws_relay_conn_close(ngx_ws_relay_conn_t *wc, ngx_uint_t code,
    const char *reason)
{
    u_char                    *p;
    size_t                     len, reason_len;
    ngx_connection_t          *c;

    if (wc->closing) {
        return;
    }

    wc->closing = 1;
    wc->close_code = code ? code : NGX_WS_RELAY_CLOSE_NO_STATUS;
    c = wc->connection;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "ws relay: close %ui queued", wc->close_code);

    reason_len = reason ? ngx_min(ngx_strlen(reason), 120) : 0;
    len = code ? 2 + reason_len : 0;

    p = ngx_ws_relay_conn_reserve(wc, 2 + len);

    if (p) {
        p = ngx_ws_relay_frame_write_header(p, NGX_WS_RELAY_OP_CLOSE,
                                            NGX_WS_RELAY_FIN, len);
        if (code) {
            *p++ = (u_char) (code >> 8);
            *p++ = (u_char) code;

            if (reason_len) {
                ngx_memcpy(p, reason, reason_len);
            }
        }
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    /* not cancelable: a shutting down worker waits for the close */
    ngx_add_timer(c->write, ngx_ws_relay_worker.main_conf->close_timeout);

    ngx_ws_relay_conn_post_write(wc);
}


ngx_int_t
ngx_ws_relay_conn_send(ngx_ws_relay_conn_t *wc, ngx_uint_t opcode,
    u_char *data, size_t len)
{
    ngx_ws_relay_message_t  m;

    if (opcode == NGX_WS_RELAY_OP_TEXT) {
        m.text.data = data;
        m.text.len = len;
        m.window_bits = 0;

        return ngx_ws_relay_conn_send_message(wc, &m);
    }

    return ngx_ws_relay_conn_send_frame(wc, opcode, 0, data, len);
}


/*
 * A text message, compressed when permessage-deflate is on and it is long
 * enough.  Without context takeover the compressed bytes are the same for
 * every connection with the same window: m keeps them for the next one.
 */

ngx_int_t
ngx_ws_relay_conn_send_message(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_message_t *m)
{
    if (wc->deflate_bits == 0
        || m->text.len < wc->conf->deflate_min_length)
    {
        return ngx_ws_relay_conn_send_frame(wc, NGX_WS_RELAY_OP_TEXT, 0,
                                            m->text.data, m->text.len);
    }

    if (m->window_bits != wc->deflate_bits
        || m->level != wc->conf->deflate_level)
    {
        m->window_bits = 0;

        if (ngx_ws_relay_deflate(wc->deflate_bits, wc->conf->deflate_level,
                                 m->text.data, m->text.len, &m->deflated,
                                 wc->connection->log)
            != NGX_OK)
        {
            return ngx_ws_relay_conn_send_frame(wc, NGX_WS_RELAY_OP_TEXT, 0,
                                                m->text.data, m->text.len);
        }

        m->window_bits = wc->deflate_bits;
        m->level = wc->conf->deflate_level;
    }

    return ngx_ws_relay_conn_send_frame(wc, NGX_WS_RELAY_OP_TEXT,
                                        NGX_WS_RELAY_RSV1, m->deflated.data,
                                        m->deflated.len);
}


static ngx_int_t
ngx_ws_relay_conn_send_frame(ngx_ws_relay_conn_t *wc, ngx_uint_t opcode,
    ngx_uint_t flags, u_char *data, size_t len)
{
    u_char  *p;

    if (wc->closing) {
        return NGX_DECLINED;
    }

    p = ngx_ws_relay_conn_reserve(wc, ngx_ws_relay_frame_header_size(len)
                                      + len);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: frame queued opcode:%ui len:%uz rsv1:%d",
                   opcode, len, (flags & NGX_WS_RELAY_RSV1) != 0);

    p = ngx_ws_relay_frame_write_header(p, opcode, NGX_WS_RELAY_FIN|flags,
                                        len);

    if (len) {
        ngx_memcpy(p, data, len);
    }

    if (opcode < NGX_WS_RELAY_OP_CLOSE) {
        ngx_ws_relay_stat_add(messages_out, 1);
    }

    ngx_ws_relay_conn_post_write(wc);

    return NGX_OK;
}


/*
 * Room for len more bytes at the end of the send queue.  A backlog that
 * would pass ws_relay_send_buffer closes the connection (1008) instead;
 * an empty queue always takes the frame, whatever its size.
 */

static u_char *
ngx_ws_relay_conn_reserve(ngx_ws_relay_conn_t *wc, size_t len)
{
    u_char  *p;
    size_t   queued, size;

    queued = wc->out_last - wc->out_pos;

    if (!wc->closing && queued && queued + len > wc->conf->send_buffer) {
        ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                      "ws relay: send queue over %uz bytes, closing with 1008",
                      wc->conf->send_buffer);

        wc->read_closed = 1;
        ngx_ws_relay_conn_close(wc, NGX_WS_RELAY_CLOSE_POLICY,
                                "send queue full");
        return NULL;
    }

    if (wc->out_last + len > wc->out_size) {

        if (queued + len <= wc->out_size) {
            ngx_memmove(wc->out, wc->out + wc->out_pos, queued);

        } else {
            size = ngx_max(wc->out_size * 2, queued + len);
            size = ngx_max(size, 1024);

            p = ngx_alloc(size, wc->connection->log);
            if (p == NULL) {
                return NULL;
            }

            if (wc->out) {
                ngx_memcpy(p, wc->out + wc->out_pos, queued);
                ngx_free(wc->out);
            }

            wc->out = p;
            wc->out_size = size;
        }

        wc->out_pos = 0;
        wc->out_last = queued;
    }

    p = wc->out + wc->out_last;
    wc->out_last += len;

    return p;
}


/*
 * Frames queued while the worker handles a batch of events go out
 * together: the write handler runs once, after the batch.
 */

static void
ngx_ws_relay_conn_post_write(ngx_ws_relay_conn_t *wc)
{
    ngx_event_t  *wev;

    wev = wc->connection->write;

    if (!wev->posted && (wev->ready || wc->closing)) {
        ngx_post_event(wev, &ngx_posted_events);
    }
}


static void
ngx_ws_relay_conn_write_handler(ngx_event_t *wev)
{
    ngx_int_t             rc;
    ngx_connection_t     *c;
    ngx_ws_relay_conn_t  *wc;

    c = wev->data;
    wc = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "ws relay: close handshake timed out");
        ngx_ws_relay_conn_finalize(wc);
        return;
    }

    rc = ngx_ws_relay_conn_flush(wc);

    if (rc == NGX_ERROR) {
        ngx_ws_relay_conn_finalize(wc);
        return;
    }

    if (rc == NGX_AGAIN) {
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_ws_relay_conn_finalize(wc);
        }

        return;
    }

    if (wc->peer_closed) {
        ngx_ws_relay_conn_finalize(wc);
        return;
    }

    if (!wc->closing) {
        return;
    }

    if (wc->close_received) {
        ngx_ws_relay_conn_finalize(wc);
        return;
    }

    /* our close is out: wait for the peer's close or its FIN */

    if (!wc->write_shutdown) {
        wc->write_shutdown = 1;

        if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
            ngx_ws_relay_conn_finalize(wc);
        }
    }
}


static ngx_int_t
ngx_ws_relay_conn_flush(ngx_ws_relay_conn_t *wc)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = wc->connection;

    while (wc->out_pos < wc->out_last) {

        if (!c->write->ready) {
            return NGX_AGAIN;
        }

        n = c->send(c, wc->out + wc->out_pos, wc->out_last - wc->out_pos);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "ws relay: %z bytes sent", n);

        wc->out_pos += n;
        ngx_ws_relay_stat_add(bytes_out, n);
    }

    /* an idle connection keeps no send buffer */

    if (wc->out) {
        ngx_free(wc->out);
        wc->out = NULL;
        wc->out_pos = 0;
        wc->out_last = 0;
        wc->out_size = 0;
    }

    return NGX_OK;
}


static void
ngx_ws_relay_conn_finalize(ngx_ws_relay_conn_t *wc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    c = wc->connection;
    r = wc->request;

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "ws relay: closed with %ui after %M ms, %O bytes sent",
                  wc->close_code ? wc->close_code : 1006,
                  ngx_current_msec - wc->start, c->sent);

    if (r) {
        /* not detached: the request goes first */
        wc->request = NULL;
        ngx_http_free_request(r, 0);
    }

    ngx_ws_relay_conn_release(wc);

    /* the log handler reads c->data while the connection closes */
    c->data = NULL;
    ngx_free(wc);

    ngx_http_close_connection(c);
}


/* the request pool goes while wc is still attached to it */

static void
ngx_ws_relay_conn_cleanup(void *data)
{
    ngx_ws_relay_conn_t  *wc = data;

    if (wc->request == NULL) {
        /* detached or finalized: wc outlives the request */
        return;
    }

    ngx_ws_relay_conn_release(wc);
    ngx_free(wc);
}


static void
ngx_ws_relay_conn_release(ngx_ws_relay_conn_t *wc)
{
    if (wc->drain && wc->drain->timer_set) {
        ngx_del_timer(wc->drain);
    }

    ngx_ws_relay_router_close(wc);
    ngx_ws_relay_shm_count_close(wc->close_code ? wc->close_code : 1006);

    if (wc->out) {
        ngx_free(wc->out);
    }

    if (wc->message) {
        ngx_free(wc->message);
    }

    if (wc->in) {
        ngx_free(wc->in);
    }
}

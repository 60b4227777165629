
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_redis_link.h"


/*
 * hiredis on nginx's event loop: the hiredis socket becomes an nginx
 * connection, and the five hooks of the async API add and delete its
 * events.  The events are level-triggered, so a reply larger than one
 * hiredis read (16 KB) is read on the next loop turn without a lost edge.
 */


#define NGX_WS_RELAY_REDIS_READS  64


static void ngx_ws_relay_redis_read_handler(ngx_event_t *rev);
static void ngx_ws_relay_redis_write_handler(ngx_event_t *wev);
static void ngx_ws_relay_redis_add_read(void *data);
static void ngx_ws_relay_redis_del_read(void *data);
static void ngx_ws_relay_redis_add_write(void *data);
static void ngx_ws_relay_redis_del_write(void *data);
static void ngx_ws_relay_redis_cleanup(void *data);


ngx_int_t
ngx_ws_relay_redis_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ac;
    c->read->handler = ngx_ws_relay_redis_read_handler;
    c->write->handler = ngx_ws_relay_redis_write_handler;
    c->read->log = log;
    c->write->log = log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_ws_relay_redis_add_read;
    ac->ev.delRead = ngx_ws_relay_redis_del_read;
    ac->ev.addWrite = ngx_ws_relay_redis_add_write;
    ac->ev.delWrite = ngx_ws_relay_redis_del_write;
    ac->ev.cleanup = ngx_ws_relay_redis_cleanup;

    return NGX_OK;
}


/*
 * hiredis reads 16 KB a call: under load, read on while the socket has
 * bytes, so that Redis traffic keeps pace with the clients' traffic.
 */

static void
ngx_ws_relay_redis_read_handler(ngx_event_t *rev)
{
    int                         n;
    ngx_uint_t                  i;
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_ws_relay_redis_link_t  *link;

    c = rev->data;
    ac = c->data;

    link = ac->data;

    for (i = 0; i < NGX_WS_RELAY_REDIS_READS; i++) {

        if (link->raw) {
            ngx_ws_relay_redis_link_read(link);

        } else {
            redisAsyncHandleRead(ac);
        }

        /* the context is gone when hiredis ran the cleanup hook */
        if (c->fd == (ngx_socket_t) -1) {
            return;
        }

        if (ioctl(c->fd, FIONREAD, &n) == -1 || n <= 0) {
            return;
        }
    }
}


static void
ngx_ws_relay_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t  *c = wev->data;

    redisAsyncHandleWrite(c->data);
}


static void
ngx_ws_relay_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_ws_relay_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_ws_relay_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_ws_relay_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis closes the socket itself after this */

static void
ngx_ws_relay_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_ws_relay_redis_del_read(c);
    ngx_ws_relay_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* c->data links the free list from now on */
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}

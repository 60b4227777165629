
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_redis_link.h"
#include "ngx_ws_relay_shm.h"


#define NGX_WS_RELAY_REDIS_BACKOFF_MIN   100
#define NGX_WS_RELAY_REDIS_BACKOFF_MAX   5000


static void ngx_ws_relay_redis_link_reconnect(ngx_event_t *ev);
static void ngx_ws_relay_redis_link_connected(const redisAsyncContext *ac,
    int status);
static void ngx_ws_relay_redis_link_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_ws_relay_redis_link_lost(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_redis_link_sent(ngx_ws_relay_redis_link_t *link);
static ngx_int_t ngx_ws_relay_redis_link_append(ngx_ws_relay_redis_link_t *link,
    const char *cmd, size_t len);
static void ngx_ws_relay_redis_batch_flush(ngx_ws_relay_redis_batch_t *b);


void
ngx_ws_relay_redis_link_connect(ngx_ws_relay_redis_link_t *link)
{
    ngx_str_t                      *password;
    redisAsyncContext              *ac;
    ngx_ws_relay_redis_conf_t      *rcf;
    ngx_ws_relay_redis_endpoint_t  *ep;

    rcf = link->conf;
    ep = link->endpoint;

    if (link->reconnect.handler == NULL) {
        link->reconnect.handler = ngx_ws_relay_redis_link_reconnect;
        link->reconnect.data = link;
        link->reconnect.log = link->log;
        link->reconnect.cancelable = 1;
    }

    if (ep->unix_path.len == 0 && ep->host.len == 0) {
        /* the sentinels have not named the master yet */
        ngx_ws_relay_redis_link_lost(link);
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, link->log, 0,
                   "ws relay: redis %s link connecting to %s:%i",
                   link->name,
                   ep->unix_path.len ? ep->unix_path.data : ep->host.data,
                   ep->port);

    if (ep->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) ep->unix_path.data);

    } else {
        ac = redisAsyncConnect((char *) ep->host.data, (int) ep->port);
    }

    if (ac == NULL || ac->err) {
        ngx_ws_relay_redis_error(link->log,
                                 "redis %s link: could not connect: %s",
                                 link->name,
                                 ac ? ac->errstr : "out of memory");

        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_ws_relay_redis_link_lost(link);
        return;
    }

    if (ngx_ws_relay_redis_attach(ac, link->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_ws_relay_redis_link_lost(link);
        return;
    }

    ac->data = link;
    link->ac = ac;
    link->ready = 0;
    link->outstanding = 0;
    link->since = ngx_current_msec;
    link->progress = ngx_current_msec;

    redisAsyncSetConnectCallback(ac, ngx_ws_relay_redis_link_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_ws_relay_redis_link_disconnected);

    password = link->sentinel ? &rcf->sentinel_password : &rcf->password;

    if (password->len) {
        (void) ngx_ws_relay_redis_link_command(link,
                                               ngx_ws_relay_redis_link_reply,
                                               link, "AUTH %b",
                                               password->data,
                                               password->len);
    }

    if (rcf->db && !link->subscriber && !link->sentinel && !link->cluster) {
        (void) ngx_ws_relay_redis_link_command(link,
                                               ngx_ws_relay_redis_link_reply,
                                               link, "SELECT %d",
                                               (int) rcf->db);
    }

    /* commands queue up in hiredis until the socket connects */
    link->connected(link);
}


static void
ngx_ws_relay_redis_link_reconnect(ngx_event_t *ev)
{
    ngx_ws_relay_redis_link_connect(ev->data);
}


void
ngx_ws_relay_redis_link_ready(ngx_ws_relay_redis_link_t *link)
{
    ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                  "ws relay: redis %s link ready", link->name);

    link->ready = 1;
}


static void
ngx_ws_relay_redis_link_connected(const redisAsyncContext *ac, int status)
{
    ngx_ws_relay_redis_link_t  *link = ac->data;

    if (status == REDIS_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, link->log, 0,
                       "ws relay: redis %s link connected", link->name);
        return;
    }

    /* hiredis frees the context after this callback */

    ngx_ws_relay_redis_error(link->log,
                             "redis %s link: could not connect: %s",
                             link->name, ac->errstr);

    if (link->ac == ac) {
        ngx_ws_relay_redis_link_lost(link);
    }
}


static void
ngx_ws_relay_redis_link_disconnected(const redisAsyncContext *ac, int status)
{
    ngx_ws_relay_redis_link_t  *link = ac->data;

    if (link->ac != ac) {
        /* dropped by us: already handled */
        return;
    }

    ngx_ws_relay_redis_error(link->log, "redis %s link lost: %s", link->name,
                             status == REDIS_OK ? "closed" : ac->errstr);

    ngx_ws_relay_redis_link_lost(link);
}


/* the link has no context any more: try again after a backoff */

static void
ngx_ws_relay_redis_link_lost(ngx_ws_relay_redis_link_t *link)
{
    ngx_msec_t  delay;

    link->ac = NULL;
    link->ready = 0;
    link->outstanding = 0;

    link->lost(link);

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    if (link->backoff == 0) {
        link->backoff = NGX_WS_RELAY_REDIS_BACKOFF_MIN;

    } else {
        link->backoff = ngx_min(link->backoff * 2,
                                NGX_WS_RELAY_REDIS_BACKOFF_MAX);
    }

    /* jitter: workers that lost Redis together come back apart */
    delay = link->backoff / 2 + ngx_random() % (link->backoff / 2 + 1);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, link->log, 0,
                   "ws relay: redis %s link reconnects in %M ms",
                   link->name, delay);

    if (!link->reconnect.timer_set) {
        ngx_add_timer(&link->reconnect, delay);
    }
}


/*
 * Cuts the link: with a reason, it reconnects after its backoff; without
 * one (the worker exits), for good.  Pending callbacks run with no reply.
 */

void
ngx_ws_relay_redis_link_drop(ngx_ws_relay_redis_link_t *link,
    const char *reason)
{
    redisAsyncContext  *ac;

    ac = link->ac;

    if (reason) {
        ngx_ws_relay_redis_error(link->log, "redis %s link: %s, reconnecting",
                                 link->name, reason);
        ngx_ws_relay_redis_link_lost(link);

    } else {
        link->ac = NULL;
        link->ready = 0;
        link->outstanding = 0;

        if (link->reconnect.timer_set) {
            ngx_del_timer(&link->reconnect);
        }
    }

    if (ac) {
        redisAsyncFree(ac);
    }
}


/*
 * hiredis has no timers: the owner's watchdog calls this to cut a link
 * that does not connect, or whose commands are not answered, in time.
 */

void
ngx_ws_relay_redis_link_check(ngx_ws_relay_redis_link_t *link,
    ngx_msec_t now)
{
    if (link->ac == NULL) {
        return;
    }

    if (!link->ready && now - link->since > link->conf->timeout) {
        ngx_ws_relay_redis_link_drop(link, "timed out connecting");

    } else if (link->outstanding
               && now - link->progress > link->conf->timeout)
    {
        ngx_ws_relay_redis_link_drop(link, "command timed out");
    }
}


/* the time a link has had to connect or answer starts again */

void
ngx_ws_relay_redis_link_restart_clock(ngx_ws_relay_redis_link_t *link,
    ngx_msec_t now)
{
    link->since = now;
    link->progress = now;
}


ngx_int_t
ngx_ws_relay_redis_link_command(ngx_ws_relay_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, const char *format, ...)
{
    int       rc;
    char     *cmd;
    va_list   args;

    if (link->ac == NULL) {
        return NGX_DECLINED;
    }

    va_start(args, format);

    if (link->raw) {
        rc = redisvFormatCommand(&cmd, format, args);

        if (rc > 0) {
            rc = ngx_ws_relay_redis_link_append(link, cmd, (size_t) rc);
            redisFreeCommand(cmd);

        } else {
            rc = NGX_ERROR;
        }

    } else {
        rc = redisvAsyncCommand(link->ac, fn, privdata, format, args);
    }

    va_end(args);

    if (rc != REDIS_OK) {
        return NGX_ERROR;
    }

    ngx_ws_relay_redis_link_sent(link);

    return NGX_OK;
}


/* a command already written in RESP: the hot path parses no format */

ngx_int_t
ngx_ws_relay_redis_link_send(ngx_ws_relay_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, u_char *cmd, size_t len)
{
    if (link->ac == NULL) {
        return NGX_DECLINED;
    }

    if (link->raw) {
        if (ngx_ws_relay_redis_link_append(link, (char *) cmd, len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (redisAsyncFormattedCommand(link->ac, fn, privdata,
                                          (char *) cmd, len)
               != REDIS_OK)
    {
        return NGX_ERROR;
    }

    ngx_ws_relay_redis_link_sent(link);

    return NGX_OK;
}


/* a raw link's command: written when the socket is writable */

static ngx_int_t
ngx_ws_relay_redis_link_append(ngx_ws_relay_redis_link_t *link,
    const char *cmd, size_t len)
{
    redisAsyncContext  *ac;

    ac = link->ac;

    if (redisAppendFormattedCommand(&ac->c, cmd, len) != REDIS_OK) {
        return NGX_ERROR;
    }

    if (ac->ev.addWrite) {
        ac->ev.addWrite(ac->ev.data);
    }

    return NGX_OK;
}


/* a raw link's read event: every whole reply goes to push(), in order */

void
ngx_ws_relay_redis_link_read(ngx_ws_relay_redis_link_t *link)
{
    void               *reply;
    redisAsyncContext  *ac;

    ac = link->ac;

    if (!(ac->c.flags & REDIS_CONNECTED)) {
        /* hiredis completes the connect; nothing was sent yet */
        redisAsyncHandleRead(ac);
        return;
    }

    if (redisBufferRead(&ac->c) != REDIS_OK) {
        ngx_ws_relay_redis_link_drop(link, ac->c.errstr[0] ? ac->c.errstr
                                                           : "read failed");
        return;
    }

    for ( ;; ) {
        reply = NULL;

        if (redisGetReply(&ac->c, &reply) != REDIS_OK) {
            ngx_ws_relay_redis_link_drop(link, "protocol error");
            return;
        }

        if (reply == NULL) {
            return;
        }

        link->push(link, reply);
        freeReplyObject(reply);

        if (link->ac != ac) {
            /* push() dropped the link */
            return;
        }
    }
}


/*
 * Replies to commands come in order: one answered late means Redis
 * stalls.  A subscriber's liveness is its owner's to prove.
 */

static void
ngx_ws_relay_redis_link_sent(ngx_ws_relay_redis_link_t *link)
{
    if (!link->subscriber && link->outstanding++ == 0) {
        link->progress = ngx_current_msec;
    }
}


void
ngx_ws_relay_redis_link_replied(ngx_ws_relay_redis_link_t *link)
{
    if (link->outstanding) {
        link->outstanding--;
    }

    link->progress = ngx_current_msec;
}


ngx_uint_t
ngx_ws_relay_redis_link_is_error(ngx_ws_relay_redis_link_t *link,
    redisReply *reply, const char *what)
{
    if (reply->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    ngx_ws_relay_redis_error(link->log, "redis %s link: %s failed: %*s",
                             link->name, what, (size_t) reply->len,
                             reply->str);

    if (reply->len >= 8 && ngx_strncmp(reply->str, "READONLY", 8) == 0
        && link->ac)
    {
        /* a master demoted to a replica: never written to again */
        ngx_ws_relay_redis_link_drop(link, "the server is a replica now");
    }

    return 1;
}


/*
 * The reply to a command whose answer matters only when it is an error;
 * from the link the context belongs to (a cluster's command may be
 * answered by another link than the one it was sent on).
 */

void
ngx_ws_relay_redis_link_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_ws_relay_redis_link_t  *link;

    /* no reply: ac may be NULL (a cluster's command that found no master) */

    if (reply == NULL || (link = ac->data)->ac != ac) {
        return;
    }

    ngx_ws_relay_redis_link_replied(link);
    (void) ngx_ws_relay_redis_link_is_error(link, reply, "a command");
}


/* logs a Redis failure and keeps its text for the API */

void
ngx_ws_relay_redis_error(ngx_log_t *log, const char *fmt, ...)
{
    u_char   *p, text[NGX_WS_RELAY_ERROR_LEN];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + NGX_WS_RELAY_ERROR_LEN - 1, fmt, args);
    va_end(args);

    *p = '\0';

    ngx_log_error(NGX_LOG_ERR, log, 0, "ws relay: %s", text);

    ngx_memcpy(ngx_ws_relay_slot->redis_error, text, p - text + 1);
    ngx_ws_relay_slot->redis_errors++;
}


/*
 * "<command> [key] <prefix><item><suffix> ...": items are added one by one
 * and go out NGX_WS_RELAY_REDIS_BATCH at a time; an item with its prefix
 * and suffix takes at most item_size bytes.
 */

ngx_int_t
ngx_ws_relay_redis_batch_init(ngx_ws_relay_redis_batch_t *b,
    ngx_ws_relay_redis_link_t *link, redisCallbackFn *fn, void *privdata,
    const char *command, ngx_str_t *key, size_t item_size)
{
    b->link = link;
    b->fn = fn;
    b->privdata = privdata;
    b->item_size = item_size;

    b->argv[0] = command;
    b->argvlen[0] = ngx_strlen(command);
    b->first = 1;

    if (key) {
        b->argv[1] = (const char *) key->data;
        b->argvlen[1] = key->len;
        b->first = 2;
    }

    b->argc = b->first;

    b->buf = ngx_alloc(NGX_WS_RELAY_REDIS_BATCH * item_size, link->log);
    b->pos = b->buf;

    return b->buf ? NGX_OK : NGX_ERROR;
}


void
ngx_ws_relay_redis_batch_add(ngx_ws_relay_redis_batch_t *b,
    ngx_str_t *prefix, ngx_str_t *item, const char *suffix)
{
    u_char  *p;

    p = b->pos;

    if (prefix) {
        p = ngx_cpymem(p, prefix->data, prefix->len);
    }

    p = ngx_cpymem(p, item->data, item->len);

    if (suffix) {
        p = ngx_cpymem(p, suffix, ngx_strlen(suffix));
    }

    b->argv[b->argc] = (const char *) b->pos;
    b->argvlen[b->argc] = p - b->pos;
    b->pos += b->item_size;

    if (++b->argc == NGX_WS_RELAY_REDIS_BATCH + b->first) {
        ngx_ws_relay_redis_batch_flush(b);
    }
}


/* what is left goes out; the batch's memory is freed */

void
ngx_ws_relay_redis_batch_done(ngx_ws_relay_redis_batch_t *b)
{
    if (b->argc > b->first) {
        ngx_ws_relay_redis_batch_flush(b);
    }

    ngx_free(b->buf);
}


static void
ngx_ws_relay_redis_batch_flush(ngx_ws_relay_redis_batch_t *b)
{
    if (b->link->ac
        && redisAsyncCommandArgv(b->link->ac, b->fn, b->privdata,
                                 (int) b->argc, b->argv, b->argvlen)
           == REDIS_OK)
    {
        ngx_ws_relay_redis_link_sent(b->link);
    }

    b->argc = b->first;
    b->pos = b->buf;
}

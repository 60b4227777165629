
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_redis.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_shm.h"


/*
 * Redis is the bus between workers and hosts.  Each worker has two links:
 * one for commands and one for subscriptions.  A worker subscribes to
 * "<prefix>u:<user>" while it holds a connection of that user, and to
 * its own node channel "<prefix>n:<node>".  A message for a user is one
 * PUBLISH of "<origin node> <delivery id> <JSON>" to the user channel;
 * each receiving worker delivers it to its connections and publishes
 * "ack <delivery id> <count>" to the origin's node channel.  PUBLISH's
 * reply says how many acks to wait for; a worker skips (and acks for
 * itself) its own publications.
 *
 * Presence for the API: the set "<prefix>node:<node>:users" holds the
 * users of a worker, and the sorted set "<prefix>nodes" its lease expiry;
 * both expire when the worker stops refreshing them.
 */


#define NGX_WS_RELAY_REDIS_BACKOFF_MIN   100
#define NGX_WS_RELAY_REDIS_BACKOFF_MAX   5000
#define NGX_WS_RELAY_REDIS_LEASE         30000
#define NGX_WS_RELAY_REDIS_LEASE_REFRESH 10000
/* channels or members per SUBSCRIBE or SADD on a resync */
#define NGX_WS_RELAY_REDIS_BATCH         256


typedef struct ngx_ws_relay_redis_link_s  ngx_ws_relay_redis_link_t;

struct ngx_ws_relay_redis_link_s {
    redisAsyncContext          *ac;
    const char                 *name;
    ngx_event_t                 reconnect;
    ngx_msec_t                  backoff;
    ngx_msec_t                  since;
    /* commands sent and not answered yet, and the last reply's time */
    ngx_uint_t                  outstanding;
    ngx_msec_t                  progress;
    unsigned                    ready:1;
};


typedef struct {
    ngx_ws_relay_redis_conf_t  *conf;
    ngx_log_t                  *log;

    ngx_ws_relay_redis_link_t   cmd;
    ngx_ws_relay_redis_link_t   sub;

    ngx_str_t                   node_channel;
    ngx_str_t                   presence_key;
    ngx_str_t                   nodes_key;

    ngx_event_t                 watchdog;
    ngx_msec_t                  lease_refreshed;

    /* the subscriber's liveness: a ping through our own node channel */
    uint64_t                    ping_seq;
    struct timeval              ping_sent_tv;
    ngx_msec_t                  ping_sent;
    unsigned                    ping_in_flight:1;
    unsigned                    was_up:1;

    u_char                     *buf;
    size_t                      buf_size;

    ngx_uint_t                  exiting;
} ngx_ws_relay_redis_t;


typedef struct {
    ngx_ws_relay_presence_pt    handler;
    void                       *data;
    json_t                     *nodes;
    json_t                     *order;
    size_t                      next;
    ngx_uint_t                  pending;
    ngx_uint_t                  failed;
} ngx_ws_relay_redis_presence_t;


static void ngx_ws_relay_redis_connect(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_ws_relay_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_ws_relay_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_ws_relay_redis_lost(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_redis_drop(ngx_ws_relay_redis_link_t *link,
    const char *reason);
static void ngx_ws_relay_redis_watchdog(ngx_event_t *ev);
static ngx_int_t ngx_ws_relay_redis_command(ngx_ws_relay_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, const char *format, ...);
static ngx_int_t ngx_ws_relay_redis_publish_to(const char *kind,
    ngx_str_t *name, ngx_str_t *parts, ngx_uint_t nparts,
    redisCallbackFn *fn, void *privdata);
static ngx_int_t ngx_ws_relay_redis_argv(ngx_ws_relay_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen);
static void ngx_ws_relay_redis_sent(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_redis_replied(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_redis_generic_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_ws_relay_redis_ready_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_redis_publish_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_redis_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_redis_user_message(ngx_str_t *user_id,
    ngx_str_t *payload);
static void ngx_ws_relay_redis_node_message(ngx_str_t *payload);
static void ngx_ws_relay_redis_cmd_ready(void);
static void ngx_ws_relay_redis_sub_ready(void);
static void ngx_ws_relay_redis_resync(const char *command, ngx_str_t *key,
    ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_redis_resync_send(ngx_ws_relay_redis_link_t *link,
    ngx_str_t *key, int argc, const char **argv, const size_t *argvlen);
static void ngx_ws_relay_redis_refresh_lease(void);
static ngx_int_t ngx_ws_relay_redis_user_channel(ngx_str_t *user_id,
    ngx_str_t *channel);
static u_char *ngx_ws_relay_redis_buffer(size_t size);
static void ngx_ws_relay_redis_count_ready(void);
static void ngx_ws_relay_redis_nodes_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_redis_users_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_redis_presence_done(
    ngx_ws_relay_redis_presence_t *pr);
static void ngx_ws_relay_redis_measure_rtt(void);
static ngx_int_t ngx_ws_relay_redis_is_error(ngx_ws_relay_redis_link_t *link,
    redisReply *reply, const char *what);


static ngx_ws_relay_redis_t  ngx_ws_relay_redis;


/* logs a Redis failure and keeps its text for the API */

static void
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


char *
ngx_ws_relay_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ws_relay_main_conf_t *wmcf = conf;

    u_char                     *p;
    size_t                      len;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i;
    ngx_url_t                   u;
    ngx_ws_relay_redis_conf_t  *rcf;

    rcf = &wmcf->redis;

    if (rcf->enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        len = value[1].len - 5;

        if (len == 0) {
            return "has an empty unix socket path";
        }

        rcf->unix_path.data = ngx_pnalloc(cf->pool, len + 1);
        if (rcf->unix_path.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(rcf->unix_path.data, value[1].data + 5, len + 1);
        rcf->unix_path.len = len;

    } else {
        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = value[1];
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"%V\" of \"ws_relay_redis\"",
                               u.err ? u.err : "invalid address", &u.url);
            return NGX_CONF_ERROR;
        }

        if (u.naddrs == 0) {
            return "has an address that does not resolve";
        }

        /* resolved now: hiredis would resolve names while serving */

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                            NGX_SOCKADDR_STRLEN, 0);
        p[len] = '\0';

        rcf->host.data = p;
        rcf->host.len = len;
        rcf->port = u.port;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rcf->password.data = value[i].data + 9;
            rcf->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            rcf->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (rcf->db == NGX_ERROR) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rcf->prefix.data = value[i].data + 7;
            rcf->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            rcf->timeout = ngx_parse_time(&s, 0);
            if (rcf->timeout == (ngx_msec_t) NGX_ERROR || rcf->timeout == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "ack_timeout=", 12) == 0) {
            s.data = value[i].data + 12;
            s.len = value[i].len - 12;

            rcf->ack_timeout = ngx_parse_time(&s, 0);
            if (rcf->ack_timeout == (ngx_msec_t) NGX_ERROR
                || rcf->ack_timeout == 0)
            {
                goto invalid;
            }
            continue;
        }

        goto invalid;
    }

    rcf->enabled = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


void
ngx_ws_relay_redis_init_conf(ngx_ws_relay_redis_conf_t *rcf)
{
    ngx_conf_init_value(rcf->enabled, 0);
    ngx_conf_init_value(rcf->db, 0);
    ngx_conf_init_msec_value(rcf->timeout, 2000);
    ngx_conf_init_msec_value(rcf->ack_timeout, 500);

    if (rcf->prefix.data == NULL) {
        ngx_str_set(&rcf->prefix, "ws_relay:");
    }
}


ngx_int_t
ngx_ws_relay_redis_init_worker(ngx_cycle_t *cycle)
{
    u_char                     *p;
    ngx_str_t                  *node;
    ngx_ws_relay_redis_t       *rd;
    ngx_ws_relay_redis_conf_t  *rcf;

    rd = &ngx_ws_relay_redis;
    rcf = &ngx_ws_relay_worker.main_conf->redis;

    if (!rcf->enabled) {
        return NGX_OK;
    }

    rd->conf = rcf;
    rd->log = cycle->log;

    /* the time cached before the fork may be old: timeouts count from now */
    ngx_time_update();
    node = &ngx_ws_relay_worker.node_id;

    p = ngx_pnalloc(cycle->pool, 3 * (rcf->prefix.len + node->len) + 32);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rd->node_channel.data = p;
    p = ngx_sprintf(p, "%Vn:%V", &rcf->prefix, node);
    rd->node_channel.len = p - rd->node_channel.data;

    rd->presence_key.data = p;
    p = ngx_sprintf(p, "%Vnode:%V:users", &rcf->prefix, node);
    rd->presence_key.len = p - rd->presence_key.data;

    rd->nodes_key.data = p;
    p = ngx_sprintf(p, "%Vnodes", &rcf->prefix);
    rd->nodes_key.len = p - rd->nodes_key.data;

    rd->cmd.name = "commands";
    rd->sub.name = "subscriber";

    rd->cmd.reconnect.handler = ngx_ws_relay_redis_reconnect_handler;
    rd->cmd.reconnect.data = &rd->cmd;
    rd->cmd.reconnect.log = cycle->log;
    rd->cmd.reconnect.cancelable = 1;

    rd->sub.reconnect = rd->cmd.reconnect;
    rd->sub.reconnect.data = &rd->sub;

    rd->watchdog.handler = ngx_ws_relay_redis_watchdog;
    rd->watchdog.data = rd;
    rd->watchdog.log = cycle->log;
    rd->watchdog.cancelable = 1;

    ngx_ws_relay_redis_connect(&rd->cmd);
    ngx_ws_relay_redis_connect(&rd->sub);

    ngx_ws_relay_stat_set(redis_state, ngx_ws_relay_redis_state());

    ngx_add_timer(&rd->watchdog, ngx_max(rcf->timeout / 2, 50));

    return NGX_OK;
}


void
ngx_ws_relay_redis_exit_worker(void)
{
    int                         done;
    ngx_uint_t                  i;
    ngx_ws_relay_redis_t       *rd;
    ngx_ws_relay_redis_link_t  *link;

    rd = &ngx_ws_relay_redis;
    rd->exiting = 1;

    /*
     * Our presence goes at once, not when its lease runs out, so the API
     * never shows a worker that exited.  The event loop is gone: write
     * the two commands out here.
     */

    if (rd->cmd.ready
        && redisAsyncCommand(rd->cmd.ac, NULL, NULL, "ZREM %b %b",
                             rd->nodes_key.data, rd->nodes_key.len,
                             ngx_ws_relay_worker.node_id.data,
                             ngx_ws_relay_worker.node_id.len)
           == REDIS_OK
        && redisAsyncCommand(rd->cmd.ac, NULL, NULL, "DEL %b",
                             rd->presence_key.data, rd->presence_key.len)
           == REDIS_OK)
    {
        done = 0;

        for (i = 0; !done && i < 100; i++) {
            if (redisBufferWrite(&rd->cmd.ac->c, &done) != REDIS_OK) {
                break;
            }
        }
    }

    for (link = &ngx_ws_relay_redis.cmd;
         link <= &ngx_ws_relay_redis.sub;
         link++)
    {
        if (link->ac) {
            ngx_ws_relay_redis_drop(link, NULL);
        }
    }
}


static void
ngx_ws_relay_redis_connect(ngx_ws_relay_redis_link_t *link)
{
    redisAsyncContext          *ac;
    ngx_ws_relay_redis_t       *rd;
    ngx_ws_relay_redis_conf_t  *rcf;

    rd = &ngx_ws_relay_redis;
    rcf = rd->conf;

    if (rcf->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) rcf->unix_path.data);

    } else {
        ac = redisAsyncConnect((char *) rcf->host.data, (int) rcf->port);
    }

    if (ac == NULL || ac->err) {
        ngx_ws_relay_redis_error(rd->log,
                                 "redis %s link: could not connect: %s",
                                 link->name,
                                 ac ? ac->errstr : "out of memory");

        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_ws_relay_redis_lost(link);
        return;
    }

    if (ngx_ws_relay_redis_attach(ac, rd->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_ws_relay_redis_lost(link);
        return;
    }

    ac->data = link;
    link->ac = ac;
    link->ready = 0;
    link->outstanding = 0;
    link->since = ngx_current_msec;
    link->progress = ngx_current_msec;

    redisAsyncSetConnectCallback(ac, ngx_ws_relay_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_ws_relay_redis_disconnected);

    if (rcf->password.len) {
        (void) ngx_ws_relay_redis_command(link,
                                          ngx_ws_relay_redis_generic_reply,
                                          link, "AUTH %b",
                                          rcf->password.data,
                                          rcf->password.len);
    }

    if (link == &rd->cmd) {
        if (rcf->db) {
            (void) ngx_ws_relay_redis_command(link,
                                           ngx_ws_relay_redis_generic_reply,
                                           link, "SELECT %d", (int) rcf->db);
        }

        (void) ngx_ws_relay_redis_command(link, ngx_ws_relay_redis_ready_reply,
                                          link, "PING");
        return;
    }

    /* the subscriber is ready once its node channel is subscribed */

    (void) redisAsyncCommand(ac, ngx_ws_relay_redis_message, NULL,
                             "SUBSCRIBE %b", rd->node_channel.data,
                             rd->node_channel.len);
}


static void
ngx_ws_relay_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_ws_relay_redis_connect(ev->data);
}


static void
ngx_ws_relay_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_ws_relay_redis_link_t  *link = ac->data;

    if (status == REDIS_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_ws_relay_redis.log, 0,
                       "ws relay: redis %s link connected", link->name);
        return;
    }

    /* hiredis frees the context after this callback */

    ngx_ws_relay_redis_error(ngx_ws_relay_redis.log,
                                     "redis %s link: could not connect: %s",
                                     link->name, ac->errstr);

    if (link->ac == ac) {
        ngx_ws_relay_redis_lost(link);
    }
}


static void
ngx_ws_relay_redis_disconnected(const redisAsyncContext *ac, int status)
{
    ngx_ws_relay_redis_link_t  *link = ac->data;

    if (link->ac != ac) {
        /* dropped by us: already handled */
        return;
    }

    ngx_ws_relay_redis_error(ngx_ws_relay_redis.log,
                                     "redis %s link lost: %s", link->name,
                                     status == REDIS_OK ? "closed"
                                                        : ac->errstr);

    ngx_ws_relay_redis_lost(link);
}


/* the link has no context any more: try again after a backoff */

static void
ngx_ws_relay_redis_lost(ngx_ws_relay_redis_link_t *link)
{
    ngx_msec_t  delay;

    link->ac = NULL;
    link->ready = 0;
    link->outstanding = 0;

    ngx_ws_relay_stat_set(redis_state, ngx_ws_relay_redis_state());

    if (link == &ngx_ws_relay_redis.sub) {
        ngx_ws_relay_redis.ping_in_flight = 0;
    }

    if (ngx_ws_relay_redis.exiting || ngx_exiting || ngx_terminate) {
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

    if (!link->reconnect.timer_set) {
        ngx_add_timer(&link->reconnect, delay);
    }
}


static void
ngx_ws_relay_redis_drop(ngx_ws_relay_redis_link_t *link, const char *reason)
{
    redisAsyncContext  *ac;

    if (reason) {
        ngx_ws_relay_redis_error(ngx_ws_relay_redis.log,
                                         "redis %s link: %s, reconnecting",
                                         link->name, reason);
    }

    ac = link->ac;
    ngx_ws_relay_redis_lost(link);

    /* runs the pending callbacks with no reply */
    redisAsyncFree(ac);
}


/*
 * hiredis has no timers: this one cuts a link that does not connect,
 * does not answer commands, or whose subscriber stopped hearing its own
 * pings, and refreshes the presence lease.
 */

static void
ngx_ws_relay_redis_watchdog(ngx_event_t *ev)
{
    ngx_msec_t                  now, timeout;
    ngx_ws_relay_redis_t       *rd;
    ngx_ws_relay_redis_link_t  *link;

    rd = ev->data;
    now = ngx_current_msec;
    timeout = rd->conf->timeout;

    for (link = &rd->cmd; link <= &rd->sub; link++) {

        if (link->ac == NULL) {
            continue;
        }

        if (!link->ready && now - link->since > timeout) {
            ngx_ws_relay_redis_drop(link, "timed out connecting");

        } else if (link->outstanding && now - link->progress > timeout) {
            ngx_ws_relay_redis_drop(link, "command timed out");
        }
    }

    if (rd->cmd.ready && rd->sub.ready) {

        if (rd->ping_in_flight) {
            /* a busy subscriber is alive: only silence counts */
            if (now - rd->ping_sent > timeout
                && now - rd->sub.progress > timeout)
            {
                ngx_ws_relay_redis_drop(&rd->sub, "subscriber timed out");
            }

        } else if (ngx_ws_relay_redis_command(&rd->cmd,
                                             ngx_ws_relay_redis_generic_reply,
                                             &rd->cmd, "PUBLISH %b ping:%llu",
                                             rd->node_channel.data,
                                             rd->node_channel.len,
                                             (unsigned long long)
                                             ++rd->ping_seq)
                   == NGX_OK)
        {
            rd->ping_in_flight = 1;
            rd->ping_sent = now;
            ngx_gettimeofday(&rd->ping_sent_tv);
        }
    }

    if (rd->cmd.ready
        && now - rd->lease_refreshed >= NGX_WS_RELAY_REDIS_LEASE_REFRESH)
    {
        ngx_ws_relay_redis_refresh_lease();
    }

    ngx_add_timer(ev, ngx_max(timeout / 2, 50));
}


static ngx_int_t
ngx_ws_relay_redis_command(ngx_ws_relay_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, const char *format, ...)
{
    int      rc;
    va_list  args;

    if (link->ac == NULL) {
        return NGX_DECLINED;
    }

    va_start(args, format);
    rc = redisvAsyncCommand(link->ac, fn, privdata, format, args);
    va_end(args);

    if (rc != REDIS_OK) {
        return NGX_ERROR;
    }

    ngx_ws_relay_redis_sent(link);

    return NGX_OK;
}


static ngx_int_t
ngx_ws_relay_redis_argv(ngx_ws_relay_redis_link_t *link, redisCallbackFn *fn,
    void *privdata, int argc, const char **argv, const size_t *argvlen)
{
    if (link->ac == NULL) {
        return NGX_DECLINED;
    }

    if (redisAsyncCommandArgv(link->ac, fn, privdata, argc, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    ngx_ws_relay_redis_sent(link);

    return NGX_OK;
}


/*
 * Replies on the command link come in order: one answered late means
 * Redis stalls.  The subscriber's liveness is checked by pings instead.
 */

static void
ngx_ws_relay_redis_sent(ngx_ws_relay_redis_link_t *link)
{
    if (link == &ngx_ws_relay_redis.cmd && link->outstanding++ == 0) {
        link->progress = ngx_current_msec;
    }
}


static void
ngx_ws_relay_redis_replied(ngx_ws_relay_redis_link_t *link)
{
    if (link->outstanding) {
        link->outstanding--;
    }

    link->progress = ngx_current_msec;
}


static ngx_int_t
ngx_ws_relay_redis_is_error(ngx_ws_relay_redis_link_t *link,
    redisReply *reply, const char *what)
{
    if (reply->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    ngx_ws_relay_redis_error(ngx_ws_relay_redis.log,
                                     "redis %s link: %s failed: %*s",
                                     link->name, what, (size_t) reply->len,
                                     reply->str);

    return 1;
}


static void
ngx_ws_relay_redis_generic_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_ws_relay_redis_link_t  *link = privdata;

    if (r == NULL || link->ac != ac) {
        return;
    }

    ngx_ws_relay_redis_replied(link);
    (void) ngx_ws_relay_redis_is_error(link, r, "a command");
}


static void
ngx_ws_relay_redis_ready_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_ws_relay_redis_link_t  *link = privdata;

    if (r == NULL || link->ac != ac) {
        return;
    }

    ngx_ws_relay_redis_replied(link);

    if (ngx_ws_relay_redis_is_error(link, r, "PING")) {
        ngx_ws_relay_redis_drop(link, "not usable");
        return;
    }

    ngx_ws_relay_redis_cmd_ready();
}


static void
ngx_ws_relay_redis_cmd_ready(void)
{
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                  "ws relay: redis commands link ready");

    rd->cmd.ready = 1;
    ngx_ws_relay_redis_count_ready();

    /* what this worker holds, written anew */

    (void) ngx_ws_relay_redis_command(&rd->cmd,
                                      ngx_ws_relay_redis_generic_reply,
                                      &rd->cmd, "DEL %b",
                                      rd->presence_key.data,
                                      rd->presence_key.len);

    ngx_ws_relay_redis_resync("SADD", &rd->presence_key, &rd->cmd);
    ngx_ws_relay_redis_refresh_lease();
}


static void
ngx_ws_relay_redis_sub_ready(void)
{
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                  "ws relay: redis subscriber link ready");

    rd->sub.ready = 1;
    ngx_ws_relay_redis_count_ready();

    ngx_ws_relay_redis_resync("SUBSCRIBE", NULL, &rd->sub);
}


/*
 * Sends every user of this worker again, in batches: as members of the
 * presence set (SADD key ...) or as channels (SUBSCRIBE ...).
 */

static void
ngx_ws_relay_redis_resync(const char *command, ngx_str_t *key,
    ngx_ws_relay_redis_link_t *link)
{
    int                   argc, first;
    u_char               *p;
    ngx_str_t             channel;
    ngx_queue_t          *q, *users;
    ngx_ws_relay_user_t  *user;
    const char           *argv[NGX_WS_RELAY_REDIS_BATCH + 2];
    size_t                argvlen[NGX_WS_RELAY_REDIS_BATCH + 2];
    u_char               *channels;

    argv[0] = command;
    argvlen[0] = ngx_strlen(command);
    first = 1;

    if (key) {
        argv[1] = (const char *) key->data;
        argvlen[1] = key->len;
        first = 2;
    }

    /* channel names of one batch, side by side */
    channels = NULL;

    if (key == NULL) {
        channels = ngx_alloc(NGX_WS_RELAY_REDIS_BATCH
                             * (ngx_ws_relay_redis.conf->prefix.len + 2
                                + NGX_WS_RELAY_MAX_USER_ID),
                             ngx_ws_relay_redis.log);
        if (channels == NULL) {
            return;
        }
    }

    argc = first;
    p = channels;
    users = ngx_ws_relay_registry_users_queue();

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

        if (key) {
            argv[argc] = (const char *) user->sn.str.data;
            argvlen[argc] = user->sn.str.len;

        } else {
            channel.data = p;
            p = ngx_sprintf(p, "%Vu:%V", &ngx_ws_relay_redis.conf->prefix,
                            &user->sn.str);
            argv[argc] = (const char *) channel.data;
            argvlen[argc] = p - channel.data;
        }

        if (++argc == NGX_WS_RELAY_REDIS_BATCH + first) {
            ngx_ws_relay_redis_resync_send(link, key, argc, argv, argvlen);
            argc = first;
            p = channels;
        }
    }

    if (argc > first) {
        ngx_ws_relay_redis_resync_send(link, key, argc, argv, argvlen);
    }

    if (channels) {
        ngx_free(channels);
    }
}


static void
ngx_ws_relay_redis_resync_send(ngx_ws_relay_redis_link_t *link,
    ngx_str_t *key, int argc, const char **argv, const size_t *argvlen)
{
    if (key) {
        (void) ngx_ws_relay_redis_argv(link, ngx_ws_relay_redis_generic_reply,
                                       link, argc, argv, argvlen);

    } else {
        (void) ngx_ws_relay_redis_argv(link, ngx_ws_relay_redis_message,
                                       NULL, argc, argv, argvlen);
    }
}


static void
ngx_ws_relay_redis_refresh_lease(void)
{
    uint64_t               now;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;
    rd->lease_refreshed = ngx_current_msec;
    now = ngx_ws_relay_now_ms();

    (void) ngx_ws_relay_redis_command(&rd->cmd,
                                      ngx_ws_relay_redis_generic_reply,
                                      &rd->cmd, "ZADD %b %llu %b",
                                      rd->nodes_key.data, rd->nodes_key.len,
                                      (unsigned long long)
                                      (now + NGX_WS_RELAY_REDIS_LEASE),
                                      ngx_ws_relay_worker.node_id.data,
                                      ngx_ws_relay_worker.node_id.len);

    (void) ngx_ws_relay_redis_command(&rd->cmd,
                                      ngx_ws_relay_redis_generic_reply,
                                      &rd->cmd, "PEXPIRE %b %d",
                                      rd->presence_key.data,
                                      rd->presence_key.len,
                                      NGX_WS_RELAY_REDIS_LEASE);

    /* leases of workers that died */
    (void) ngx_ws_relay_redis_command(&rd->cmd,
                                      ngx_ws_relay_redis_generic_reply,
                                      &rd->cmd, "ZREMRANGEBYSCORE %b -inf %llu",
                                      rd->nodes_key.data, rd->nodes_key.len,
                                      (unsigned long long) now);
}


void
ngx_ws_relay_redis_user_joined(ngx_str_t *user_id)
{
    ngx_str_t              channel;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (rd->conf == NULL) {
        return;
    }

    /* while a link is not ready, its resync will carry the user */

    if (rd->sub.ready
        && ngx_ws_relay_redis_user_channel(user_id, &channel) == NGX_OK)
    {
        if (redisAsyncCommand(rd->sub.ac, ngx_ws_relay_redis_message, NULL,
                              "SUBSCRIBE %b", channel.data, channel.len)
            == REDIS_OK)
        {
            /* on its way before the client hears that it is registered */
            redisAsyncHandleWrite(rd->sub.ac);
        }
    }

    if (rd->cmd.ready) {
        (void) ngx_ws_relay_redis_command(&rd->cmd,
                                          ngx_ws_relay_redis_generic_reply,
                                          &rd->cmd, "SADD %b %b",
                                          rd->presence_key.data,
                                          rd->presence_key.len,
                                          user_id->data, user_id->len);

        /* the set may be new: it must never outlive its lease */
        (void) ngx_ws_relay_redis_command(&rd->cmd,
                                          ngx_ws_relay_redis_generic_reply,
                                          &rd->cmd, "PEXPIRE %b %d",
                                          rd->presence_key.data,
                                          rd->presence_key.len,
                                          NGX_WS_RELAY_REDIS_LEASE);
    }
}


/*
 * hiredis (Debian's 0.14.1 and 1.x) counts pending subscriptions per
 * channel, so an UNSUBSCRIBE followed at once by a SUBSCRIBE of the same
 * channel keeps its callback.
 */

void
ngx_ws_relay_redis_user_left(ngx_str_t *user_id)
{
    ngx_str_t              channel;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (rd->conf == NULL) {
        return;
    }

    if (rd->sub.ready
        && ngx_ws_relay_redis_user_channel(user_id, &channel) == NGX_OK)
    {
        (void) redisAsyncCommand(rd->sub.ac, NULL, NULL, "UNSUBSCRIBE %b",
                                 channel.data, channel.len);
    }

    if (rd->cmd.ready) {
        (void) ngx_ws_relay_redis_command(&rd->cmd,
                                          ngx_ws_relay_redis_generic_reply,
                                          &rd->cmd, "SREM %b %b",
                                          rd->presence_key.data,
                                          rd->presence_key.len,
                                          user_id->data, user_id->len);
    }
}


/*
 * One PUBLISH per message.  NGX_DECLINED: no Redis to reach other
 * workers with, so only this worker's connections got the message.
 */

ngx_int_t
ngx_ws_relay_redis_publish(ngx_str_t *user_id, ngx_str_t *text, uint64_t id)
{
    u_char                 head[NGX_INT64_LEN + 2];
    ngx_str_t              parts[3];
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (!rd->cmd.ready) {
        return NGX_DECLINED;
    }

    parts[0] = ngx_ws_relay_worker.node_id;
    parts[1].data = head;
    parts[1].len = ngx_sprintf(head, " %uL ", id) - head;
    parts[2] = *text;

    return ngx_ws_relay_redis_publish_to("u:", user_id, parts, 3,
                                         ngx_ws_relay_redis_publish_reply,
                                         (void *) (uintptr_t) id);
}


/*
 * PUBLISH <prefix><kind><name> <parts...> on the commands link, written
 * in RESP by hand: the hot path has no format string to parse and no
 * argument vector to build.
 */

static ngx_int_t
ngx_ws_relay_redis_publish_to(const char *kind, ngx_str_t *name,
    ngx_str_t *parts, ngx_uint_t nparts, redisCallbackFn *fn, void *privdata)
{
    u_char                *p, *start;
    size_t                 channel_len, message_len;
    ngx_uint_t             i;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (rd->cmd.ac == NULL) {
        return NGX_DECLINED;
    }

    channel_len = rd->conf->prefix.len + 2 + name->len;
    message_len = 0;

    for (i = 0; i < nparts; i++) {
        message_len += parts[i].len;
    }

    start = ngx_ws_relay_redis_buffer(sizeof("*3\r\n$7\r\nPUBLISH\r\n") - 1
                                      + 2 * (NGX_SIZE_T_LEN + 5)
                                      + channel_len + message_len);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(start, "*3\r\n$7\r\nPUBLISH\r\n$%uz\r\n%V%s",
                    channel_len, &rd->conf->prefix, kind);
    p = ngx_cpymem(p, name->data, name->len);
    p = ngx_sprintf(p, "\r\n$%uz\r\n", message_len);

    for (i = 0; i < nparts; i++) {
        p = ngx_cpymem(p, parts[i].data, parts[i].len);
    }

    *p++ = '\r';
    *p++ = '\n';

    if (redisAsyncFormattedCommand(rd->cmd.ac, fn, privdata, (char *) start,
                                   p - start)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    ngx_ws_relay_redis_sent(&rd->cmd);

    return NGX_OK;
}


static void
ngx_ws_relay_redis_publish_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply  *reply = r;

    uint64_t                    id;
    ngx_ws_relay_redis_link_t  *link;

    id = (uintptr_t) privdata;
    link = &ngx_ws_relay_redis.cmd;

    if (reply == NULL || link->ac != ac) {
        ngx_ws_relay_delivery_published(id, -1);
        return;
    }

    ngx_ws_relay_redis_replied(link);

    if (reply->type != REDIS_REPLY_INTEGER) {
        if (!ngx_ws_relay_redis_is_error(link, reply, "PUBLISH")) {
            ngx_log_error(NGX_LOG_ERR, ngx_ws_relay_redis.log, 0,
                          "ws relay: redis PUBLISH answered with type %d",
                          reply->type);
        }

        ngx_ws_relay_delivery_published(id, -1);
        return;
    }

    ngx_ws_relay_delivery_published(id, (ngx_int_t) reply->integer);
}


/* everything the subscriber link receives */

static void
ngx_ws_relay_redis_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    size_t                 i;
    ngx_str_t              type, channel, payload, user_id, *prefix;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (reply == NULL || rd->sub.ac != ac) {
        return;
    }

    rd->sub.progress = ngx_current_msec;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        goto unexpected;
    }

    for (i = 0; i < 2; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            goto unexpected;
        }
    }

    type.data = (u_char *) reply->element[0]->str;
    type.len = reply->element[0]->len;
    channel.data = (u_char *) reply->element[1]->str;
    channel.len = reply->element[1]->len;

    if (type.len == 9 && ngx_strncmp(type.data, "subscribe", 9) == 0) {

        if (channel.len == rd->node_channel.len
            && ngx_strncmp(channel.data, rd->node_channel.data,
                           channel.len) == 0
            && !rd->sub.ready)
        {
            ngx_ws_relay_redis_sub_ready();
        }

        return;
    }

    if (type.len != 7 || ngx_strncmp(type.data, "message", 7) != 0) {
        /* unsubscribe confirmations */
        return;
    }

    if (reply->element[2]->type != REDIS_REPLY_STRING) {
        goto unexpected;
    }

    payload.data = (u_char *) reply->element[2]->str;
    payload.len = reply->element[2]->len;

    if (channel.len == rd->node_channel.len
        && ngx_strncmp(channel.data, rd->node_channel.data, channel.len)
           == 0)
    {
        ngx_ws_relay_redis_node_message(&payload);
        return;
    }

    prefix = &rd->conf->prefix;

    if (channel.len > prefix->len + 2
        && ngx_strncmp(channel.data, prefix->data, prefix->len) == 0
        && ngx_strncmp(channel.data + prefix->len, "u:", 2) == 0)
    {
        user_id.data = channel.data + prefix->len + 2;
        user_id.len = channel.len - prefix->len - 2;

        ngx_ws_relay_redis_user_message(&user_id, &payload);
        return;
    }

unexpected:

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "ws relay: redis subscriber link: unexpected reply of "
                  "type %d ignored", reply->type);
}


/* "<origin node> <delivery id> <JSON>" for a user of this worker */

static void
ngx_ws_relay_redis_user_message(ngx_str_t *user_id, ngx_str_t *payload)
{
    u_char                *p, *last, *id_start;
    u_char                 buf[sizeof("ack::") + 2 * NGX_INT64_LEN];
    uint64_t               id;
    ngx_str_t              origin, text, ack, *node;
    ngx_uint_t             n;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;
    node = &ngx_ws_relay_worker.node_id;

    p = payload->data;
    last = p + payload->len;

    origin.data = p;
    p = ngx_strlchr(p, last, ' ');
    if (p == NULL) {
        goto invalid;
    }

    origin.len = p - origin.data;
    id_start = ++p;

    p = ngx_strlchr(p, last, ' ');
    if (p == NULL || p == id_start) {
        goto invalid;
    }

    id = 0;

    for ( /* void */ ; id_start < p; id_start++) {
        if (*id_start < '0' || *id_start > '9') {
            goto invalid;
        }

        id = id * 10 + (*id_start - '0');
    }

    text.data = p + 1;
    text.len = last - text.data;

    if (origin.len == node->len
        && ngx_strncmp(origin.data, node->data, node->len) == 0)
    {
        /* ours: delivered locally when it was sent */
        ngx_ws_relay_delivery_acked(id, 0);
        return;
    }

    n = ngx_ws_relay_delivery_local(user_id, &text);

    ack.data = buf;
    ack.len = ngx_sprintf(buf, "ack:%uL:%ui", id, n) - buf;

    (void) ngx_ws_relay_redis_publish_to("n:", &origin, &ack, 1,
                                         ngx_ws_relay_redis_generic_reply,
                                         &rd->cmd);
    return;

invalid:

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "ws relay: malformed message on the channel of user "
                  "\"%V\" ignored", user_id);
}


/* "ack:<delivery id>:<count>" or our own "ping:<seq>" */

static void
ngx_ws_relay_redis_node_message(ngx_str_t *payload)
{
    u_char                *p, *last;
    uint64_t               values[2];
    ngx_uint_t             i, n;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    p = payload->data;
    last = p + payload->len;

    if (payload->len > 4 && ngx_strncmp(p, "ack:", 4) == 0) {
        n = 2;
        p += 4;

    } else if (payload->len > 5 && ngx_strncmp(p, "ping:", 5) == 0) {
        n = 1;
        p += 5;

    } else {
        goto invalid;
    }

    for (i = 0; i < n; i++) {
        values[i] = 0;

        if (p == last || *p < '0' || *p > '9') {
            goto invalid;
        }

        while (p < last && *p >= '0' && *p <= '9') {
            values[i] = values[i] * 10 + (*p++ - '0');
        }

        if (i + 1 < n) {
            if (p == last || *p != ':') {
                goto invalid;
            }

            p++;
        }
    }

    if (p != last) {
        goto invalid;
    }

    if (n == 2) {
        ngx_ws_relay_delivery_acked(values[0], (ngx_uint_t) values[1]);
        return;
    }

    if (rd->ping_in_flight && values[0] == rd->ping_seq) {
        rd->ping_in_flight = 0;
        ngx_ws_relay_redis_measure_rtt();

        /* a full round trip: the links work, the next loss backs off anew */
        rd->cmd.backoff = 0;
        rd->sub.backoff = 0;
    }

    return;

invalid:

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "ws relay: malformed message on the node channel "
                  "ignored: \"%V\"", payload);
}


static ngx_int_t
ngx_ws_relay_redis_user_channel(ngx_str_t *user_id, ngx_str_t *channel)
{
    u_char  *p;

    p = ngx_ws_relay_redis_buffer(ngx_ws_relay_redis.conf->prefix.len + 2
                                  + user_id->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    channel->data = p;
    channel->len = ngx_sprintf(p, "%Vu:%V", &ngx_ws_relay_redis.conf->prefix,
                               user_id)
                   - p;

    return NGX_OK;
}


/* scratch space for one command: hiredis copies what it sends */

static u_char *
ngx_ws_relay_redis_buffer(size_t size)
{
    u_char                *p;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (size > rd->buf_size) {
        size = ngx_max(size, 2 * rd->buf_size);
        size = ngx_max(size, 4096);

        p = ngx_alloc(size, rd->log);
        if (p == NULL) {
            return NULL;
        }

        if (rd->buf) {
            ngx_free(rd->buf);
        }

        rd->buf = p;
        rd->buf_size = size;
    }

    return rd->buf;
}


/*
 * Users of every live worker in the cluster, for the API: the nodes with
 * a current lease, then each one's set, answered in order.
 */

ngx_int_t
ngx_ws_relay_redis_presence(ngx_ws_relay_presence_pt handler, void *data)
{
    ngx_ws_relay_redis_t           *rd;
    ngx_ws_relay_redis_presence_t  *pr;

    rd = &ngx_ws_relay_redis;

    if (!rd->cmd.ready) {
        return NGX_DECLINED;
    }

    pr = ngx_calloc(sizeof(ngx_ws_relay_redis_presence_t), rd->log);
    if (pr == NULL) {
        return NGX_ERROR;
    }

    pr->handler = handler;
    pr->data = data;
    pr->nodes = json_object();
    pr->order = json_array();

    if (pr->nodes == NULL || pr->order == NULL
        || ngx_ws_relay_redis_command(&rd->cmd,
                                      ngx_ws_relay_redis_nodes_reply, pr,
                                      "ZRANGEBYSCORE %b %llu +inf",
                                      rd->nodes_key.data, rd->nodes_key.len,
                                      (unsigned long long)
                                      ngx_ws_relay_now_ms())
           != NGX_OK)
    {
        json_decref(pr->nodes);
        json_decref(pr->order);
        ngx_free(pr);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_ws_relay_redis_nodes_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                     *reply = r;
    ngx_ws_relay_redis_presence_t  *pr = privdata;

    size_t                  i;
    json_t                 *name;
    redisReply             *node;
    ngx_ws_relay_redis_t   *rd;

    rd = &ngx_ws_relay_redis;

    if (reply == NULL) {
        pr->failed = 1;
        ngx_ws_relay_redis_presence_done(pr);
        return;
    }

    ngx_ws_relay_redis_replied(&rd->cmd);

    if (reply->type != REDIS_REPLY_ARRAY) {
        (void) ngx_ws_relay_redis_is_error(&rd->cmd, reply, "ZRANGEBYSCORE");
        pr->failed = 1;
        ngx_ws_relay_redis_presence_done(pr);
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        node = reply->element[i];

        if (node->type != REDIS_REPLY_STRING) {
            continue;
        }

        /*
         * Answers are matched with pr->order by position: a node is asked
         * about only once its name is there.  A name that is not UTF-8
         * cannot be a JSON key: it is left out.
         */

        name = json_stringn(node->str, node->len);
        if (name == NULL) {
            continue;
        }

        if (json_array_append_new(pr->order, name) != 0) {
            pr->failed = 1;
            break;
        }

        if (ngx_ws_relay_redis_command(&rd->cmd,
                                       ngx_ws_relay_redis_users_reply, pr,
                                       "SMEMBERS %bnode:%b:users",
                                       rd->conf->prefix.data,
                                       rd->conf->prefix.len,
                                       node->str, (size_t) node->len)
            != NGX_OK)
        {
            (void) json_array_remove(pr->order,
                                     json_array_size(pr->order) - 1);
            pr->failed = 1;
            break;
        }

        pr->pending++;
    }

    if (pr->pending == 0) {
        ngx_ws_relay_redis_presence_done(pr);
    }
}


static void
ngx_ws_relay_redis_users_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                     *reply = r;
    ngx_ws_relay_redis_presence_t  *pr = privdata;

    size_t                 i;
    json_t                *users, *node;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;
    node = json_array_get(pr->order, pr->next++);

    if (reply == NULL) {
        pr->failed = 1;

    } else {
        ngx_ws_relay_redis_replied(&rd->cmd);

        if (reply->type == REDIS_REPLY_ARRAY && node) {
            users = json_array();

            for (i = 0; users && i < reply->elements; i++) {
                if (reply->element[i]->type == REDIS_REPLY_STRING) {
                    json_array_append_new(users,
                                      json_stringn(reply->element[i]->str,
                                                   reply->element[i]->len));
                }
            }

            json_object_set_new(pr->nodes, json_string_value(node), users);

        } else {
            (void) ngx_ws_relay_redis_is_error(&rd->cmd, reply, "SMEMBERS");
            pr->failed = 1;
        }
    }

    if (--pr->pending == 0) {
        ngx_ws_relay_redis_presence_done(pr);
    }
}


static void
ngx_ws_relay_redis_presence_done(ngx_ws_relay_redis_presence_t *pr)
{
    pr->handler(pr->failed ? NULL : pr->nodes, pr->data);

    json_decref(pr->nodes);
    json_decref(pr->order);
    ngx_free(pr);
}


static void
ngx_ws_relay_redis_count_ready(void)
{
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (!rd->cmd.ready || !rd->sub.ready) {
        return;
    }

    if (rd->was_up) {
        ngx_ws_relay_stat_add(redis_reconnects, 1);
    }

    rd->was_up = 1;
    ngx_ws_relay_stat_set(redis_state, NGX_WS_RELAY_REDIS_UP);
}


/* a full trip: command link, Redis, subscriber link */

static void
ngx_ws_relay_redis_measure_rtt(void)
{
    int64_t         us;
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    us = (int64_t) (tv.tv_sec - ngx_ws_relay_redis.ping_sent_tv.tv_sec)
         * 1000000
         + (tv.tv_usec - ngx_ws_relay_redis.ping_sent_tv.tv_usec);

    ngx_ws_relay_stat_set(redis_rtt_us, (ngx_atomic_uint_t) ngx_max(us, 0));
}


ngx_ws_relay_redis_state_e
ngx_ws_relay_redis_state(void)
{
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;

    if (rd->conf == NULL) {
        return NGX_WS_RELAY_REDIS_OFF;
    }

    if (rd->cmd.ready && rd->sub.ready) {
        return NGX_WS_RELAY_REDIS_UP;
    }

    if (rd->cmd.ac || rd->sub.ac) {
        return NGX_WS_RELAY_REDIS_CONNECTING;
    }

    return NGX_WS_RELAY_REDIS_DOWN;
}


const char *
ngx_ws_relay_redis_state_name(ngx_ws_relay_redis_state_e state)
{
    static const char  *names[] = {
        "disabled", "disconnected", "connecting", "connected"
    };

    return names[state];
}


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_presence.h"
#include "ngx_ws_relay_registry.h"


#define NGX_WS_RELAY_PRESENCE_LEASE    30000
#define NGX_WS_RELAY_PRESENCE_REFRESH  10000


/*
 * Each command goes to the Redis that owns its key (ngx_ws_relay_bus.c):
 * in a Redis Cluster the two keys may live on two masters, and no command
 * names keys of two slots.
 */

typedef struct {
    ngx_str_t                   *prefix;
    ngx_log_t                   *log;
    ngx_str_t                    users_key;
    ngx_str_t                    nodes_key;
    ngx_msec_t                   refreshed;
} ngx_ws_relay_presence_t;


/* a question to Redis on its way: the nodes, then each one's users */
typedef struct {
    ngx_ws_relay_presence_pt     handler;
    void                        *data;
    ngx_pool_t                  *pool;
    ngx_array_t                 *nodes;
    ngx_uint_t                   pending;
    unsigned                     failed:1;
} ngx_ws_relay_presence_query_t;

/* the question of one node's users */
typedef struct {
    ngx_ws_relay_presence_query_t  *pq;
    ngx_uint_t                      index;
} ngx_ws_relay_presence_ask_t;


static void ngx_ws_relay_presence_refresh(void);
static void ngx_ws_relay_presence_flush(ngx_ws_relay_redis_link_t *link,
    const char *format, ...);
static ngx_int_t ngx_ws_relay_presence_member(const char *command,
    ngx_str_t *user_id);
static void ngx_ws_relay_presence_nodes_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_ws_relay_presence_users_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static ngx_int_t ngx_ws_relay_presence_copy(ngx_pool_t *pool,
    ngx_str_t *dst, redisReply *src);
static void ngx_ws_relay_presence_done(ngx_ws_relay_presence_query_t *pq);


static ngx_ws_relay_presence_t  ngx_ws_relay_presence;


ngx_int_t
ngx_ws_relay_presence_init(ngx_ws_relay_redis_conf_t *rcf, ngx_cycle_t *cycle)
{
    u_char                   *p;
    ngx_str_t                *prefix, *node;
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;
    prefix = &rcf->prefix;
    node = &ngx_ws_relay_worker.node_id;

    p = ngx_pnalloc(cycle->pool, 2 * prefix->len + node->len
                                 + sizeof("node::usersnodes"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    pr->prefix = prefix;
    pr->log = cycle->log;

    pr->users_key.data = p;
    p = ngx_sprintf(p, "%Vnode:%V:users", prefix, node);
    pr->users_key.len = p - pr->users_key.data;

    pr->nodes_key.data = p;
    p = ngx_sprintf(p, "%Vnodes", prefix);
    pr->nodes_key.len = p - pr->nodes_key.data;

    return NGX_OK;
}


/* the commands link is ready (again): what this worker holds, anew */

void
ngx_ws_relay_presence_ready(void)
{
    ngx_queue_t                 *q, *users;
    ngx_ws_relay_user_t         *user;
    ngx_ws_relay_presence_t     *pr;
    ngx_ws_relay_redis_link_t   *link;
    ngx_ws_relay_redis_batch_t   b;

    pr = &ngx_ws_relay_presence;
    link = ngx_ws_relay_bus_link(&pr->users_key);

    (void) ngx_ws_relay_bus_command(&pr->users_key,
                                    ngx_ws_relay_redis_link_reply, NULL,
                                    "DEL %b", pr->users_key.data,
                                    pr->users_key.len);

    if (link
        && ngx_ws_relay_redis_batch_init(&b, link,
                                         ngx_ws_relay_redis_link_reply, NULL,
                                         "SADD", &pr->users_key,
                                         NGX_WS_RELAY_MAX_USER_ID)
           == NGX_OK)
    {
        users = ngx_ws_relay_registry_users();

        for (q = ngx_queue_head(users);
             q != ngx_queue_sentinel(users);
             q = ngx_queue_next(q))
        {
            user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);
            ngx_ws_relay_redis_batch_add(&b, NULL, &user->sn.str, NULL);
        }

        ngx_ws_relay_redis_batch_done(&b);
    }

    ngx_ws_relay_presence_refresh();
}


void
ngx_ws_relay_presence_tick(ngx_msec_t now)
{
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;

    if (now - pr->refreshed >= NGX_WS_RELAY_PRESENCE_REFRESH
        && ngx_ws_relay_bus_link(&pr->nodes_key))
    {
        ngx_ws_relay_presence_refresh();
    }
}


static void
ngx_ws_relay_presence_refresh(void)
{
    uint64_t                  now;
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;
    pr->refreshed = ngx_current_msec;
    now = ngx_ws_relay_now_ms();

    (void) ngx_ws_relay_bus_command(&pr->nodes_key,
                                    ngx_ws_relay_redis_link_reply, NULL,
                                    "ZADD %b %llu %b",
                                           pr->nodes_key.data,
                                           pr->nodes_key.len,
                                           (unsigned long long)
                                           (now
                                            + NGX_WS_RELAY_PRESENCE_LEASE),
                                           ngx_ws_relay_worker.node_id.data,
                                           ngx_ws_relay_worker.node_id.len);

    (void) ngx_ws_relay_bus_command(&pr->users_key,
                                    ngx_ws_relay_redis_link_reply, NULL,
                                    "PEXPIRE %b %d", pr->users_key.data,
                                    pr->users_key.len,
                                    NGX_WS_RELAY_PRESENCE_LEASE);

    /* leases of workers that died */
    (void) ngx_ws_relay_bus_command(&pr->nodes_key,
                                    ngx_ws_relay_redis_link_reply, NULL,
                                    "ZREMRANGEBYSCORE %b -inf %llu",
                                           pr->nodes_key.data,
                                           pr->nodes_key.len,
                                           (unsigned long long) now);
}


/*
 * The worker's presence goes at once, not when its lease runs out, so
 * the API never shows a worker that exited.  The event loop is gone:
 * the two commands are written out here.
 */

void
ngx_ws_relay_presence_exit(void)
{
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;

    ngx_ws_relay_presence_flush(ngx_ws_relay_bus_link(&pr->nodes_key),
                                "ZREM %b %b", pr->nodes_key.data,
                                pr->nodes_key.len,
                                ngx_ws_relay_worker.node_id.data,
                                ngx_ws_relay_worker.node_id.len);

    ngx_ws_relay_presence_flush(ngx_ws_relay_bus_link(&pr->users_key),
                                "DEL %b", pr->users_key.data,
                                pr->users_key.len);
}


/* one command, written out at once */

static void
ngx_ws_relay_presence_flush(ngx_ws_relay_redis_link_t *link,
    const char *format, ...)
{
    int         done, rc;
    va_list     args;
    ngx_uint_t  i;

    if (link == NULL) {
        return;
    }

    va_start(args, format);
    rc = redisvAsyncCommand(link->ac, NULL, NULL, format, args);
    va_end(args);

    if (rc != REDIS_OK) {
        return;
    }

    done = 0;

    for (i = 0; !done && i < 100; i++) {
        if (redisBufferWrite(&link->ac->c, &done) != REDIS_OK) {
            break;
        }
    }
}


/* while the link is not ready, ngx_ws_relay_presence_ready() catches up */

void
ngx_ws_relay_presence_joined(ngx_str_t *user_id)
{
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;

    if (ngx_ws_relay_presence_member("SADD", user_id) != NGX_OK) {
        return;
    }

    /* the set may be new: it must never outlive its lease */
    (void) ngx_ws_relay_bus_command(&pr->users_key,
                                    ngx_ws_relay_redis_link_reply, NULL,
                                    "PEXPIRE %b %d", pr->users_key.data,
                                    pr->users_key.len,
                                    NGX_WS_RELAY_PRESENCE_LEASE);
}


void
ngx_ws_relay_presence_left(ngx_str_t *user_id)
{
    (void) ngx_ws_relay_presence_member("SREM", user_id);
}


/* SADD or SREM of a user in this worker's set */

static ngx_int_t
ngx_ws_relay_presence_member(const char *command, ngx_str_t *user_id)
{
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;

    return ngx_ws_relay_bus_command(&pr->users_key,
                                    ngx_ws_relay_redis_link_reply, NULL,
                                    "%s %b %b", command, pr->users_key.data,
                                    pr->users_key.len, user_id->data,
                                    user_id->len);
}


/*
 * Users of every live worker in the cluster: the nodes with a current
 * lease, then each one's set, answered in order.  NGX_DECLINED: Redis is
 * not there to ask.
 */

ngx_int_t
ngx_ws_relay_presence_query(ngx_ws_relay_presence_pt handler, void *data)
{
    ngx_pool_t                     *pool;
    ngx_ws_relay_presence_t        *pr;
    ngx_ws_relay_presence_query_t  *pq;

    pr = &ngx_ws_relay_presence;

    if (ngx_ws_relay_bus_link(&pr->nodes_key) == NULL) {
        return NGX_DECLINED;
    }

    pool = ngx_create_pool(4096, pr->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    pq = ngx_pcalloc(pool, sizeof(ngx_ws_relay_presence_query_t));
    if (pq == NULL) {
        goto failed;
    }

    pq->handler = handler;
    pq->data = data;
    pq->pool = pool;

    pq->nodes = ngx_array_create(pool, 4,
                                 sizeof(ngx_ws_relay_presence_node_t));
    if (pq->nodes == NULL) {
        goto failed;
    }

    if (ngx_ws_relay_bus_command(&pr->nodes_key,
                                 ngx_ws_relay_presence_nodes_reply, pq,
                                 "ZRANGEBYSCORE %b %llu +inf",
                                 pr->nodes_key.data, pr->nodes_key.len,
                                 (unsigned long long) ngx_ws_relay_now_ms())
        == NGX_OK)
    {
        return NGX_OK;
    }

failed:

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


static void
ngx_ws_relay_presence_nodes_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                     *reply = r;
    ngx_ws_relay_presence_query_t  *pq = privdata;

    size_t                         i;
    ngx_str_t                      key;
    redisReply                    *name;
    ngx_ws_relay_presence_t       *pr;
    ngx_ws_relay_redis_link_t     *link;
    ngx_ws_relay_presence_ask_t   *ask;
    ngx_ws_relay_presence_node_t  *node;

    pr = &ngx_ws_relay_presence;

    if (reply == NULL) {
        pq->failed = 1;
        ngx_ws_relay_presence_done(pq);
        return;
    }

    link = ac->data;
    ngx_ws_relay_redis_link_replied(link);

    if (reply->type != REDIS_REPLY_ARRAY) {
        (void) ngx_ws_relay_redis_link_is_error(link, reply,
                                                "ZRANGEBYSCORE");
        pq->failed = 1;
        ngx_ws_relay_presence_done(pq);
        return;
    }

    /* one question a node, each to the Redis that owns its set */

    for (i = 0; i < reply->elements; i++) {
        name = reply->element[i];

        if (name->type != REDIS_REPLY_STRING) {
            continue;
        }

        node = ngx_array_push(pq->nodes);
        ask = ngx_palloc(pq->pool, sizeof(ngx_ws_relay_presence_ask_t));
        key.data = ngx_pnalloc(pq->pool, pr->prefix->len + name->len
                                         + sizeof("node::users"));

        if (node == NULL || ask == NULL || key.data == NULL
            || ngx_ws_relay_presence_copy(pq->pool, &node->node, name)
               != NGX_OK
            || ngx_array_init(&node->users, pq->pool, 8, sizeof(ngx_str_t))
               != NGX_OK)
        {
            pq->failed = 1;
            break;
        }

        key.len = ngx_sprintf(key.data, "%Vnode:%V:users", pr->prefix,
                              &node->node)
                  - key.data;

        ask->pq = pq;
        ask->index = pq->nodes->nelts - 1;

        if (ngx_ws_relay_bus_command(&key, ngx_ws_relay_presence_users_reply,
                                     ask, "SMEMBERS %b", key.data, key.len)
            != NGX_OK)
        {
            pq->nodes->nelts--;
            pq->failed = 1;
            break;
        }

        pq->pending++;
    }

    if (pq->pending == 0) {
        ngx_ws_relay_presence_done(pq);
    }
}


static void
ngx_ws_relay_presence_users_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                   *reply = r;
    ngx_ws_relay_presence_ask_t  *ask = privdata;

    size_t                          i;
    ngx_str_t                      *user;
    ngx_ws_relay_redis_link_t      *link;
    ngx_ws_relay_presence_node_t   *node;
    ngx_ws_relay_presence_query_t  *pq;

    pq = ask->pq;
    node = (ngx_ws_relay_presence_node_t *) pq->nodes->elts + ask->index;

    if (reply == NULL) {
        pq->failed = 1;

    } else if (reply->type != REDIS_REPLY_ARRAY) {
        link = ac->data;
        ngx_ws_relay_redis_link_replied(link);
        (void) ngx_ws_relay_redis_link_is_error(link, reply, "SMEMBERS");
        pq->failed = 1;

    } else {
        link = ac->data;
        ngx_ws_relay_redis_link_replied(link);

        for (i = 0; i < reply->elements; i++) {
            if (reply->element[i]->type != REDIS_REPLY_STRING) {
                continue;
            }

            user = ngx_array_push(&node->users);

            if (user == NULL
                || ngx_ws_relay_presence_copy(pq->pool, user,
                                              reply->element[i])
                   != NGX_OK)
            {
                pq->failed = 1;
                break;
            }
        }
    }

    if (--pq->pending == 0) {
        ngx_ws_relay_presence_done(pq);
    }
}


/* hiredis frees its replies after the callback */

static ngx_int_t
ngx_ws_relay_presence_copy(ngx_pool_t *pool, ngx_str_t *dst, redisReply *src)
{
    dst->len = src->len;
    dst->data = ngx_pnalloc(pool, dst->len);

    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->str, dst->len);

    return NGX_OK;
}


static void
ngx_ws_relay_presence_done(ngx_ws_relay_presence_query_t *pq)
{
    pq->handler(pq->failed ? NULL : pq->nodes, pq->data);

    ngx_destroy_pool(pq->pool);
}

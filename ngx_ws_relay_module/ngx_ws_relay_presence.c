
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_presence.h"
#include "ngx_ws_relay_registry.h"


#define NGX_WS_RELAY_PRESENCE_LEASE    30000
#define NGX_WS_RELAY_PRESENCE_REFRESH  10000


typedef struct {
    ngx_ws_relay_redis_link_t   *link;
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
    ngx_uint_t                   next;
    ngx_uint_t                   pending;
    unsigned                     failed:1;
} ngx_ws_relay_presence_query_t;


static void ngx_ws_relay_presence_refresh(void);
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
ngx_ws_relay_presence_init(ngx_ws_relay_redis_link_t *link,
    ngx_cycle_t *cycle)
{
    u_char                   *p;
    ngx_str_t                *prefix, *node;
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;
    prefix = &link->conf->prefix;
    node = &ngx_ws_relay_worker.node_id;

    p = ngx_pnalloc(cycle->pool, 2 * prefix->len + node->len
                                 + sizeof("node::usersnodes"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    pr->link = link;

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
    ngx_ws_relay_redis_batch_t   b;

    pr = &ngx_ws_relay_presence;

    (void) ngx_ws_relay_redis_link_command(pr->link,
                                           ngx_ws_relay_redis_link_reply,
                                           pr->link, "DEL %b",
                                           pr->users_key.data,
                                           pr->users_key.len);

    if (ngx_ws_relay_redis_batch_init(&b, pr->link,
                                      ngx_ws_relay_redis_link_reply, pr->link,
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

    if (pr->link->ready
        && now - pr->refreshed >= NGX_WS_RELAY_PRESENCE_REFRESH)
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

    (void) ngx_ws_relay_redis_link_command(pr->link,
                                           ngx_ws_relay_redis_link_reply,
                                           pr->link, "ZADD %b %llu %b",
                                           pr->nodes_key.data,
                                           pr->nodes_key.len,
                                           (unsigned long long)
                                           (now
                                            + NGX_WS_RELAY_PRESENCE_LEASE),
                                           ngx_ws_relay_worker.node_id.data,
                                           ngx_ws_relay_worker.node_id.len);

    (void) ngx_ws_relay_redis_link_command(pr->link,
                                           ngx_ws_relay_redis_link_reply,
                                           pr->link, "PEXPIRE %b %d",
                                           pr->users_key.data,
                                           pr->users_key.len,
                                           NGX_WS_RELAY_PRESENCE_LEASE);

    /* leases of workers that died */
    (void) ngx_ws_relay_redis_link_command(pr->link,
                                           ngx_ws_relay_redis_link_reply,
                                           pr->link,
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
    int                       done;
    ngx_uint_t                i;
    redisAsyncContext        *ac;
    ngx_ws_relay_presence_t  *pr;

    pr = &ngx_ws_relay_presence;
    ac = pr->link->ac;

    if (!pr->link->ready
        || redisAsyncCommand(ac, NULL, NULL, "ZREM %b %b",
                             pr->nodes_key.data, pr->nodes_key.len,
                             ngx_ws_relay_worker.node_id.data,
                             ngx_ws_relay_worker.node_id.len)
           != REDIS_OK
        || redisAsyncCommand(ac, NULL, NULL, "DEL %b",
                             pr->users_key.data, pr->users_key.len)
           != REDIS_OK)
    {
        return;
    }

    done = 0;

    for (i = 0; !done && i < 100; i++) {
        if (redisBufferWrite(&ac->c, &done) != REDIS_OK) {
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
    (void) ngx_ws_relay_redis_link_command(pr->link,
                                           ngx_ws_relay_redis_link_reply,
                                           pr->link, "PEXPIRE %b %d",
                                           pr->users_key.data,
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

    if (!pr->link->ready) {
        return NGX_DECLINED;
    }

    return ngx_ws_relay_redis_link_command(pr->link,
                                           ngx_ws_relay_redis_link_reply,
                                           pr->link, "%s %b %b", command,
                                           pr->users_key.data,
                                           pr->users_key.len,
                                           user_id->data, user_id->len);
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

    if (pr->link == NULL || !pr->link->ready) {
        return NGX_DECLINED;
    }

    pool = ngx_create_pool(4096, pr->link->log);
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

    if (ngx_ws_relay_redis_link_command(pr->link,
                                        ngx_ws_relay_presence_nodes_reply,
                                        pq, "ZRANGEBYSCORE %b %llu +inf",
                                        pr->nodes_key.data,
                                        pr->nodes_key.len,
                                        (unsigned long long)
                                        ngx_ws_relay_now_ms())
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
    ngx_str_t                     *prefix;
    redisReply                    *name;
    ngx_ws_relay_presence_t       *pr;
    ngx_ws_relay_presence_node_t  *node;

    pr = &ngx_ws_relay_presence;

    if (reply == NULL) {
        pq->failed = 1;
        ngx_ws_relay_presence_done(pq);
        return;
    }

    ngx_ws_relay_redis_link_replied(pr->link);

    if (reply->type != REDIS_REPLY_ARRAY) {
        (void) ngx_ws_relay_redis_link_is_error(pr->link, reply,
                                                "ZRANGEBYSCORE");
        pq->failed = 1;
        ngx_ws_relay_presence_done(pq);
        return;
    }

    prefix = &pr->link->conf->prefix;

    for (i = 0; i < reply->elements; i++) {
        name = reply->element[i];

        if (name->type != REDIS_REPLY_STRING) {
            continue;
        }

        /* answers are matched with the nodes by position */

        node = ngx_array_push(pq->nodes);

        if (node == NULL
            || ngx_ws_relay_presence_copy(pq->pool, &node->node, name)
               != NGX_OK
            || ngx_array_init(&node->users, pq->pool, 8, sizeof(ngx_str_t))
               != NGX_OK)
        {
            pq->failed = 1;
            break;
        }

        if (ngx_ws_relay_redis_link_command(pr->link,
                                          ngx_ws_relay_presence_users_reply,
                                          pq, "SMEMBERS %bnode:%b:users",
                                          prefix->data, prefix->len,
                                          name->str, (size_t) name->len)
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
    redisReply                     *reply = r;
    ngx_ws_relay_presence_query_t  *pq = privdata;

    size_t                         i;
    ngx_str_t                     *user;
    ngx_ws_relay_presence_t       *pr;
    ngx_ws_relay_presence_node_t  *node;

    pr = &ngx_ws_relay_presence;
    node = (ngx_ws_relay_presence_node_t *) pq->nodes->elts + pq->next++;

    if (reply == NULL) {
        pq->failed = 1;

    } else if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_ws_relay_redis_link_replied(pr->link);
        (void) ngx_ws_relay_redis_link_is_error(pr->link, reply, "SMEMBERS");
        pq->failed = 1;

    } else {
        ngx_ws_relay_redis_link_replied(pr->link);

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

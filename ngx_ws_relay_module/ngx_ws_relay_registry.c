
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_redis.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_shm.h"


/*
 * This worker's connections: all of them in one queue, and those of a
 * registered user in that user's queue, found by user id in an rbtree.
 * The queue links live inside the connection: nothing to free but the
 * user node, when its last connection leaves.
 */


typedef struct {
    ngx_rbtree_t        users;
    ngx_rbtree_node_t   sentinel;
    ngx_queue_t         connections;
    ngx_queue_t         users_queue;
    ngx_uint_t          nconnections;
    ngx_uint_t          nusers;
} ngx_ws_relay_registry_t;


static void ngx_ws_relay_registry_leave_user(ngx_ws_relay_conn_t *wc);
static uint32_t ngx_ws_relay_registry_hash(ngx_str_t *user_id);


static ngx_ws_relay_registry_t  ngx_ws_relay_registry;


void
ngx_ws_relay_registry_init(void)
{
    ngx_rbtree_init(&ngx_ws_relay_registry.users,
                    &ngx_ws_relay_registry.sentinel,
                    ngx_str_rbtree_insert_value);

    ngx_queue_init(&ngx_ws_relay_registry.connections);
    ngx_queue_init(&ngx_ws_relay_registry.users_queue);
}


void
ngx_ws_relay_registry_add(ngx_ws_relay_conn_t *wc)
{
    ngx_queue_insert_tail(&ngx_ws_relay_registry.connections, &wc->queue);
    ngx_ws_relay_registry.nconnections++;
    wc->registered = 1;

    ngx_ws_relay_stat_set(connections, ngx_ws_relay_registry.nconnections);
}


void
ngx_ws_relay_registry_remove(ngx_ws_relay_conn_t *wc)
{
    if (!wc->registered) {
        return;
    }

    ngx_ws_relay_registry_leave_user(wc);

    ngx_queue_remove(&wc->queue);
    ngx_ws_relay_registry.nconnections--;
    wc->registered = 0;

    ngx_ws_relay_stat_set(connections, ngx_ws_relay_registry.nconnections);
}


ngx_int_t
ngx_ws_relay_registry_set_user(ngx_ws_relay_conn_t *wc, ngx_str_t *user_id)
{
    uint32_t              hash;
    ngx_ws_relay_user_t  *user;

    if (wc->user && wc->user->sn.str.len == user_id->len
        && ngx_memcmp(wc->user->sn.str.data, user_id->data, user_id->len)
           == 0)
    {
        return NGX_OK;
    }

    ngx_ws_relay_registry_leave_user(wc);

    user = ngx_ws_relay_registry_find_user(user_id);

    if (user == NULL) {
        user = ngx_alloc(offsetof(ngx_ws_relay_user_t, data) + user_id->len,
                         wc->connection->log);
        if (user == NULL) {
            return NGX_ERROR;
        }

        hash = ngx_ws_relay_registry_hash(user_id);

        ngx_memcpy(user->data, user_id->data, user_id->len);
        user->sn.str.len = user_id->len;
        user->sn.str.data = user->data;
        user->sn.node.key = hash;

        ngx_queue_init(&user->connections);
        user->nconnections = 0;

        ngx_rbtree_insert(&ngx_ws_relay_registry.users, &user->sn.node);
        ngx_queue_insert_tail(&ngx_ws_relay_registry.users_queue,
                              &user->queue);
        ngx_ws_relay_registry.nusers++;
        ngx_ws_relay_stat_set(users, ngx_ws_relay_registry.nusers);

        ngx_ws_relay_redis_user_joined(&user->sn.str);
    }

    ngx_queue_insert_tail(&user->connections, &wc->user_queue);
    user->nconnections++;
    wc->user = user;

    return NGX_OK;
}


ngx_ws_relay_user_t *
ngx_ws_relay_registry_find_user(ngx_str_t *user_id)
{
    uint32_t  hash;

    hash = ngx_ws_relay_registry_hash(user_id);

    return (ngx_ws_relay_user_t *)
               ngx_str_rbtree_lookup(&ngx_ws_relay_registry.users, user_id,
                                     hash);
}


static void
ngx_ws_relay_registry_leave_user(ngx_ws_relay_conn_t *wc)
{
    ngx_ws_relay_user_t  *user;

    user = wc->user;

    if (user == NULL) {
        return;
    }

    ngx_queue_remove(&wc->user_queue);
    wc->user = NULL;

    if (--user->nconnections) {
        return;
    }

    ngx_ws_relay_redis_user_left(&user->sn.str);

    ngx_rbtree_delete(&ngx_ws_relay_registry.users, &user->sn.node);
    ngx_queue_remove(&user->queue);
    ngx_ws_relay_registry.nusers--;
    ngx_ws_relay_stat_set(users, ngx_ws_relay_registry.nusers);
    ngx_free(user);
}


ngx_uint_t
ngx_ws_relay_registry_connections(void)
{
    return ngx_ws_relay_registry.nconnections;
}


ngx_uint_t
ngx_ws_relay_registry_users(void)
{
    return ngx_ws_relay_registry.nusers;
}


ngx_queue_t *
ngx_ws_relay_registry_all(void)
{
    return &ngx_ws_relay_registry.connections;
}


ngx_queue_t *
ngx_ws_relay_registry_users_queue(void)
{
    return &ngx_ws_relay_registry.users_queue;
}


/* nginx's ngx_hash(): one multiply-add a byte, no table */

static uint32_t
ngx_ws_relay_registry_hash(ngx_str_t *user_id)
{
    size_t      i;
    ngx_uint_t  key;

    key = 0;

    for (i = 0; i < user_id->len; i++) {
        key = ngx_hash(key, user_id->data[i]);
    }

    return (uint32_t) key;
}

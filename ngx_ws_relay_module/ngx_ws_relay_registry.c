
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_shm.h"


/*
 * This worker's connections: counted, and those of a registered user in
 * that user's queue, the user found by id in an rbtree.  The queue links
 * live inside the connection: nothing to free but the user node, when
 * its last connection leaves.
 */


typedef struct {
    ngx_rbtree_t        users;
    ngx_rbtree_node_t   sentinel;
    ngx_queue_t         users_queue;
    ngx_uint_t          nconnections;
    ngx_uint_t          nusers;
} ngx_ws_relay_registry_t;


static ngx_ws_relay_registry_t  ngx_ws_relay_registry;


void
ngx_ws_relay_registry_init(void)
{
    ngx_rbtree_init(&ngx_ws_relay_registry.users,
                    &ngx_ws_relay_registry.sentinel,
                    ngx_str_rbtree_insert_value);

    ngx_queue_init(&ngx_ws_relay_registry.users_queue);
}


void
ngx_ws_relay_registry_add(ngx_ws_relay_conn_t *wc)
{
    ngx_ws_relay_registry.nconnections++;
    wc->registered = 1;

    ngx_ws_relay_stat_set(connections, ngx_ws_relay_registry.nconnections);
}


void
ngx_ws_relay_registry_remove(ngx_ws_relay_conn_t *wc)
{
    ngx_ws_relay_registry_leave(wc);

    ngx_ws_relay_registry.nconnections--;
    wc->registered = 0;

    ngx_ws_relay_stat_set(connections, ngx_ws_relay_registry.nconnections);
}


/* wc, which has no user, becomes a connection of user_id */

ngx_int_t
ngx_ws_relay_registry_join(ngx_ws_relay_conn_t *wc, ngx_str_t *user_id)
{
    ngx_ws_relay_user_t  *user;

    user = ngx_ws_relay_registry_find_user(user_id);

    if (user == NULL) {
        user = ngx_alloc(offsetof(ngx_ws_relay_user_t, data) + user_id->len,
                         wc->connection->log);
        if (user == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(user->data, user_id->data, user_id->len);
        user->sn.str.len = user_id->len;
        user->sn.str.data = user->data;
        /* the key as ngx_str_rbtree_lookup() compares it */
        user->sn.node.key = (uint32_t) ngx_hash_key(user_id->data,
                                                    user_id->len);

        ngx_queue_init(&user->connections);
        user->nconnections = 0;
        user->subscribed = 0;
        user->missed = 0;
        user->last_id.len = 0;

        ngx_rbtree_insert(&ngx_ws_relay_registry.users, &user->sn.node);
        ngx_queue_insert_tail(&ngx_ws_relay_registry.users_queue,
                              &user->queue);
        ngx_ws_relay_registry.nusers++;
        ngx_ws_relay_stat_set(users, ngx_ws_relay_registry.nusers);
    }

    ngx_queue_insert_tail(&user->connections, &wc->user_queue);
    user->nconnections++;
    wc->user = user;

    return NGX_OK;
}


ngx_ws_relay_user_t *
ngx_ws_relay_registry_find_user(ngx_str_t *user_id)
{
    return (ngx_ws_relay_user_t *)
               ngx_str_rbtree_lookup(&ngx_ws_relay_registry.users, user_id,
                                     (uint32_t) ngx_hash_key(user_id->data,
                                                             user_id->len));
}


/* wc leaves its user, if it has one; the user goes with its last one */

void
ngx_ws_relay_registry_leave(ngx_ws_relay_conn_t *wc)
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


/* the users, in the order they came: ngx_ws_relay_user_t by queue */

ngx_queue_t *
ngx_ws_relay_registry_users(void)
{
    return &ngx_ws_relay_registry.users_queue;
}


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_HISTORY_H_INCLUDED_
#define _NGX_WS_RELAY_HISTORY_H_INCLUDED_


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus_wire.h"


/*
 * Per-user history (ws_relay_history): Redis keeps, for each user, the
 * last messages sent to them, and gives each one its id, a stream id
 * "<ms>-<seq>" that grows with every message of the user.  Storing,
 * trimming, expiring and publishing a message is one script call; the
 * publication carries the id to every worker, so every copy has it.
 *
 * Keys and channel of a user share its hash tag:
 *     <prefix>h:{<user>}    the messages (a stream, field "m": the JSON)
 *     <prefix>m:{<user>}    "top": the newest id, "lost": the newest id
 *                           that is gone (trimmed by size or age)
 *     <prefix>u:{<user>}    the channel
 *
 * A connection that registers or resumes waits, held, until the worker
 * hears the user's channel, then replays what it missed from the stream
 * and goes live; what came live meanwhile is held and sent after the
 * replay, without what the replay already had.
 */


#define NGX_WS_RELAY_HISTORY_STREAM  "h:{"
#define NGX_WS_RELAY_HISTORY_META    "m:{"


/*
 * The connection joined its user: the reply to the register or resume
 * goes out now, before the replay.  recovered: 1 or 0 after a "since",
 * -1 without one.  No handler: a catch-up that the client does not hear
 * of, only its messages.
 */
typedef void (*ngx_ws_relay_history_joined_pt)(ngx_ws_relay_conn_t *wc,
    ngx_uint_t type, ngx_int_t recovered);


/* the script, and its SHA1 in hex (EVALSHA) */
extern ngx_str_t  ngx_ws_relay_history_script;
extern u_char     ngx_ws_relay_history_sha[41];

/* the connection's side */
void ngx_ws_relay_history_init(void);
void ngx_ws_relay_history_join(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_id_t *since, ngx_ws_relay_history_joined_pt handler,
    ngx_uint_t type);
ngx_int_t ngx_ws_relay_history_hold(ngx_ws_relay_conn_t *wc,
    ngx_str_t *text, ngx_str_t *id);
void ngx_ws_relay_history_subscribed(ngx_ws_relay_user_t *user);
void ngx_ws_relay_history_heard(ngx_ws_relay_user_t *user, ngx_str_t *id);
ngx_uint_t ngx_ws_relay_history_new(ngx_ws_relay_conn_t *wc, ngx_str_t *id);
ngx_uint_t ngx_ws_relay_history_may_replay(ngx_ws_relay_conn_t *wc);
void ngx_ws_relay_history_abandon(ngx_ws_relay_conn_t *wc);


#endif /* _NGX_WS_RELAY_HISTORY_H_INCLUDED_ */

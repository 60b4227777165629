
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_frame.h"
#include "ngx_ws_relay_json.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"
#include "ngx_ws_relay_shm.h"


typedef void (*ngx_ws_relay_handler_pt)(ngx_ws_relay_conn_t *wc,
    json_t *message);


typedef struct {
    ngx_str_t                 type;
    ngx_ws_relay_handler_pt   handler;
} ngx_ws_relay_route_t;


static ngx_int_t ngx_ws_relay_router_limit(ngx_ws_relay_conn_t *wc);
static ngx_int_t ngx_ws_relay_router_fast(ngx_ws_relay_conn_t *wc,
    u_char *data, size_t len);
static ngx_int_t ngx_ws_relay_router_join(ngx_ws_relay_conn_t *wc,
    ngx_str_t *user_id);
static void ngx_ws_relay_router_leave(ngx_ws_relay_conn_t *wc);
static ngx_str_t *ngx_ws_relay_router_sender(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_router_welcome(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_router_register(ngx_ws_relay_conn_t *wc,
    json_t *message);
static void ngx_ws_relay_router_ping(ngx_ws_relay_conn_t *wc,
    json_t *message);
static void ngx_ws_relay_router_chat(ngx_ws_relay_conn_t *wc,
    json_t *message);
static void ngx_ws_relay_router_notification(ngx_ws_relay_conn_t *wc,
    json_t *message);
static void ngx_ws_relay_router_unsupported(ngx_ws_relay_conn_t *wc,
    json_t *type);
static void ngx_ws_relay_router_send(ngx_ws_relay_conn_t *wc, json_t *json);
static void ngx_ws_relay_router_error(ngx_ws_relay_conn_t *wc,
    const char *text);
static ngx_uint_t ngx_ws_relay_router_bad_target(ngx_ws_relay_conn_t *wc,
    json_t *target);
static void ngx_ws_relay_router_chat_out(ngx_ws_relay_conn_t *wc,
    ngx_str_t *target, ngx_str_t *text);
static void ngx_ws_relay_router_deliver(ngx_ws_relay_conn_t *wc,
    ngx_str_t *target, ngx_str_t *message, ngx_uint_t chat);
static void ngx_ws_relay_router_delivered(ngx_ws_relay_delivery_t *d);


static ngx_ws_relay_route_t  ngx_ws_relay_routes[] = {
    { ngx_string("register"), ngx_ws_relay_router_register },
    { ngx_string("ping"), ngx_ws_relay_router_ping },
    { ngx_string("chat"), ngx_ws_relay_router_chat },
    { ngx_string("notification"), ngx_ws_relay_router_notification },
    { ngx_null_string, NULL }
};


/*
 * A connection that has just been upgraded: refused at capacity (close
 * 1013), or counted, given the identity that ws_relay_user_id set for it
 * (empty: none), and welcomed.  NGX_DECLINED: refused, the close is on
 * its way.
 */

ngx_int_t
ngx_ws_relay_router_open(ngx_ws_relay_conn_t *wc, ngx_str_t *user_id)
{
    ngx_ws_relay_main_conf_t  *wmcf;

    wmcf = ngx_ws_relay_worker.main_conf;

    if (ngx_ws_relay_registry_connections() >= wmcf->max_connections) {
        ngx_log_error(NGX_LOG_WARN, wc->connection->log, 0,
                      "ws relay: at capacity (%ui connections)",
                      wmcf->max_connections);

        ngx_ws_relay_stat_add(rejected, 1);
        ngx_ws_relay_router_error(wc,
                          "Server is at capacity, please try again later");
        ngx_ws_relay_conn_close(wc, NGX_WS_RELAY_CLOSE_TRY_AGAIN,
                                "Try Again Later");
        return NGX_DECLINED;
    }

    ngx_ws_relay_stat_add(accepted, 1);
    ngx_ws_relay_registry_add(wc);

    if (user_id->len > NGX_WS_RELAY_MAX_USER_ID) {
        ngx_log_error(NGX_LOG_WARN, wc->connection->log, 0,
                      "ws relay: user id from ws_relay_user_id is longer "
                      "than %d bytes", NGX_WS_RELAY_MAX_USER_ID);

    } else if (user_id->len) {
        if (ngx_ws_relay_router_join(wc, user_id) != NGX_OK) {
            return NGX_ERROR;
        }

        wc->user_fixed = 1;
    }

    ngx_ws_relay_router_welcome(wc);

    return NGX_OK;
}


/* the connection is going: its user and its pending replies go with it */

void
ngx_ws_relay_router_close(ngx_ws_relay_conn_t *wc)
{
    if (wc->registered) {
        ngx_ws_relay_router_leave(wc);
        ngx_ws_relay_registry_remove(wc);
    }

    ngx_ws_relay_delivery_abandon(&wc->deliveries);
}


/* this worker subscribes to a user's messages while it holds the user */

static ngx_int_t
ngx_ws_relay_router_join(ngx_ws_relay_conn_t *wc, ngx_str_t *user_id)
{
    if (ngx_ws_relay_registry_join(wc, user_id) != NGX_OK) {
        return NGX_ERROR;
    }

    if (wc->user->nconnections == 1) {
        ngx_ws_relay_bus_user_joined(&wc->user->sn.str);
    }

    return NGX_OK;
}


static void
ngx_ws_relay_router_leave(ngx_ws_relay_conn_t *wc)
{
    if (wc->user == NULL) {
        return;
    }

    if (wc->user->nconnections == 1) {
        ngx_ws_relay_bus_user_left(&wc->user->sn.str);
    }

    ngx_ws_relay_registry_leave(wc);
}


static ngx_str_t *
ngx_ws_relay_router_sender(ngx_ws_relay_conn_t *wc)
{
    return wc->user ? &wc->user->sn.str : &wc->id;
}


static void
ngx_ws_relay_router_welcome(ngx_ws_relay_conn_t *wc)
{
    json_t  *json;

    json = json_pack("{s:s, s:s, s:o, s:I, s:I}",
                     "type", "welcome",
                     "message", "connected",
                     "connectionId", ngx_ws_relay_json_string(&wc->id),
                     "processId", (json_int_t) ngx_pid,
                     "timestamp", (json_int_t) ngx_ws_relay_now_ms());

    if (json && wc->user_fixed) {
        json_object_set_new(json, "userId",
                            ngx_ws_relay_json_string(&wc->user->sn.str));
    }

    ngx_ws_relay_router_send(wc, json);
}


void
ngx_ws_relay_router_message(ngx_ws_relay_conn_t *wc, u_char *data,
    size_t len)
{
    json_t                *message, *type;
    ngx_str_t              name;
    json_error_t           error;
    ngx_ws_relay_route_t  *route;

    if (wc->conf->limit_rate && ngx_ws_relay_router_limit(wc) != NGX_OK) {
        return;
    }

    ngx_ws_relay_stat_add(messages_in, 1);

    if (ngx_ws_relay_router_fast(wc, data, len) == NGX_OK) {
        return;
    }

    message = ngx_ws_relay_json_load(data, len, 0, &error);

    if (message == NULL || !json_is_object(message)) {
        ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                      "ws relay: invalid message from client: %s",
                      message ? "not an object" : error.text);

        json_decref(message);
        ngx_ws_relay_router_error(wc, "Invalid message format");
        return;
    }

    type = json_object_get(message, "type");

    if (json_is_string(type)) {
        name.data = (u_char *) json_string_value(type);
        name.len = json_string_length(type);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                       "ws relay: message of type \"%V\"", &name);

        for (route = ngx_ws_relay_routes; route->handler; route++) {
            if (route->type.len == name.len
                && ngx_strncmp(route->type.data, name.data, name.len) == 0)
            {
                route->handler(wc, message);
                json_decref(message);
                return;
            }
        }
    }

    ngx_ws_relay_router_unsupported(wc, type);
    json_decref(message);
}


/*
 * ws_relay_limit_rate, the leaky bucket of limit_req: a message over the
 * rate and its burst is refused with an error reply; a client that goes
 * on sending as many messages again as its burst allows is closed (1008).
 */

static ngx_int_t
ngx_ws_relay_router_limit(ngx_ws_relay_conn_t *wc)
{
    ngx_int_t    excess;
    ngx_msec_t   now, elapsed;

    now = ngx_current_msec;
    elapsed = now - wc->limit_last;

    excess = (ngx_int_t) wc->limit_excess
             - (ngx_int_t) (wc->conf->limit_rate * elapsed / 1000);

    if (excess < 0) {
        excess = 0;
    }

    /* as limit_req: one message at once, and burst more */

    if ((ngx_uint_t) excess <= wc->conf->limit_burst) {
        wc->limit_excess = excess + 1000;
        wc->limit_last = now;
        wc->limit_refused = 0;
        return NGX_OK;
    }

    if (++wc->limit_refused > ngx_max(wc->conf->limit_burst / 1000, 10)) {
        ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_POLICY,
                               "message rate limit exceeded");
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                  "ws relay: message over the rate limit refused");

    ngx_ws_relay_router_error(wc, "Rate limit exceeded, message dropped");

    return NGX_DECLINED;
}


/*
 * The usual messages, ping and chat as flat objects of plain strings, are
 * read without jansson: their strings are their values as they are, and
 * written out as they came.  Anything else declines, every malformed
 * message included, and jansson answers it as it answers any message.
 */

static ngx_int_t
ngx_ws_relay_router_fast(ngx_ws_relay_conn_t *wc, u_char *data, size_t len)
{
    ngx_str_t                   *type, *target, *text, text_json;
    ngx_uint_t                   n;
    ngx_ws_relay_json_member_t   members[NGX_WS_RELAY_JSON_FLAT_MAX];

    if (ngx_ws_relay_json_read_flat(data, len, members, &n) != NGX_OK) {
        return NGX_DECLINED;
    }

    type = ngx_ws_relay_json_flat_get(members, n, "type");

    if (type == NULL) {
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: flat message of type \"%V\"", type);

    if (type->len == 4 && ngx_strncmp(type->data, "ping", 4) == 0) {
        ngx_ws_relay_router_ping(wc, NULL);
        return NGX_OK;
    }

    if (type->len != 4 || ngx_strncmp(type->data, "chat", 4) != 0) {
        return NGX_DECLINED;
    }

    target = ngx_ws_relay_json_flat_get(members, n, "targetUserId");
    text = ngx_ws_relay_json_flat_get(members, n, "text");

    if (target && target->len == 0) {
        /* falsy: the message comes back to its sender */
        target = NULL;
    }

    if (target && target->len > NGX_WS_RELAY_MAX_USER_ID) {
        return NGX_DECLINED;
    }

    if (text) {
        /* the string with its quotes: jansson would write it so */
        text_json.data = text->data - 1;
        text_json.len = text->len + 2;
    }

    ngx_ws_relay_router_chat_out(wc, target, text ? &text_json : NULL);

    return NGX_OK;
}


static void
ngx_ws_relay_router_register(ngx_ws_relay_conn_t *wc, json_t *message)
{
    json_t     *user;
    ngx_str_t   user_id;

    user = json_object_get(message, "userId");

    if (ngx_ws_relay_json_falsy(user)) {
        ngx_ws_relay_router_error(wc, "Missing userId in register message");
        return;
    }

    if (!json_is_string(user)) {
        ngx_ws_relay_router_error(wc, "userId must be a string");
        return;
    }

    user_id.data = (u_char *) json_string_value(user);
    user_id.len = json_string_length(user);

    if (user_id.len > NGX_WS_RELAY_MAX_USER_ID) {
        ngx_ws_relay_router_error(wc, "userId is too long");
        return;
    }

    if (wc->user_fixed
        && (user_id.len != wc->user->sn.str.len
            || ngx_memcmp(user_id.data, wc->user->sn.str.data, user_id.len)
               != 0))
    {
        ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                      "ws relay: client \"%V\" tried to register as \"%V\"",
                      &wc->user->sn.str, &user_id);

        ngx_ws_relay_router_error(wc,
                             "Cannot register as another user: the user id "
                             "is set by the server");
        return;
    }

    if (wc->user == NULL
        || wc->user->sn.str.len != user_id.len
        || ngx_memcmp(wc->user->sn.str.data, user_id.data, user_id.len) != 0)
    {
        ngx_ws_relay_router_leave(wc);

        if (ngx_ws_relay_router_join(wc, &user_id) != NGX_OK) {
            ngx_ws_relay_router_error(wc, "Internal server error");
            return;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: connection %V registered as \"%V\"",
                   &wc->id, &user_id);

    ngx_ws_relay_router_send(wc,
        json_pack("{s:s, s:s, s:O, s:I}",
                  "type", "register",
                  "status", "success",
                  "userId", user,
                  "timestamp", (json_int_t) ngx_ws_relay_now_ms()));
}


static void
ngx_ws_relay_router_ping(ngx_ws_relay_conn_t *wc, json_t *message)
{
    u_char  *p, buf[sizeof("{\"type\":\"pong\",\"timestamp\":}")
                    + NGX_INT64_LEN];

    p = ngx_sprintf(buf, "{\"type\":\"pong\",\"timestamp\":%uL}",
                    ngx_ws_relay_now_ms());

    (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, buf, p - buf);
}


static void
ngx_ws_relay_router_chat(ngx_ws_relay_conn_t *wc, json_t *message)
{
    char       *dumped;
    json_t     *target, *text;
    ngx_str_t   target_id, text_json, *to;

    target = json_object_get(message, "targetUserId");
    text = json_object_get(message, "text");

    if (ngx_ws_relay_json_falsy(target)) {
        /* no target: the message comes back to its sender */
        to = NULL;

    } else if (ngx_ws_relay_router_bad_target(wc, target)) {
        return;

    } else {
        target_id.data = (u_char *) json_string_value(target);
        target_id.len = json_string_length(target);
        to = &target_id;
    }

    dumped = NULL;

    if (text) {
        dumped = json_dumps(text, JSON_ENCODE_ANY|JSON_COMPACT
                                  |JSON_PRESERVE_ORDER);
        if (dumped == NULL) {
            ngx_ws_relay_router_send(wc, NULL);
            return;
        }

        text_json.data = (u_char *) dumped;
        text_json.len = ngx_strlen(dumped);
    }

    ngx_ws_relay_router_chat_out(wc, to, text ? &text_json : NULL);

    free(dumped);
}


/*
 * {"type":"chat","text":<text>,"sender":..,"timestamp":..} to every
 * connection of target, or back to the sender when there is none; text
 * is JSON already, NULL when the message had none.
 */

static void
ngx_ws_relay_router_chat_out(ngx_ws_relay_conn_t *wc, ngx_str_t *target,
    ngx_str_t *text)
{
    u_char     *p, *start;
    uint32_t    state;
    ngx_str_t   chat, *sender;

    sender = ngx_ws_relay_router_sender(wc);

    start = ngx_ws_relay_json_scratch(
                sizeof("{\"type\":\"chat\",\"text\":,\"sender\":,"
                       "\"timestamp\":}")
                + (text ? text->len : 0)
                + NGX_WS_RELAY_JSON_STR_LEN(sender->len) + NGX_INT64_LEN);
    if (start == NULL) {
        ngx_ws_relay_router_error(wc, "Internal server error");
        return;
    }

    p = ngx_cpymem(start, "{\"type\":\"chat\"",
                   sizeof("{\"type\":\"chat\"") - 1);

    if (text) {
        p = ngx_cpymem(p, ",\"text\":", sizeof(",\"text\":") - 1);
        p = ngx_cpymem(p, text->data, text->len);
    }

    /* a sender that is not UTF-8 is no JSON string: left out */

    state = 0;

    if (ngx_ws_relay_utf8_check(&state, sender->data, sender->len) == NGX_OK
        && ngx_ws_relay_utf8_complete(state))
    {
        p = ngx_cpymem(p, ",\"sender\":", sizeof(",\"sender\":") - 1);
        p = ngx_ws_relay_json_write_string(p, sender);
    }

    p = ngx_sprintf(p, ",\"timestamp\":%uL}", ngx_ws_relay_now_ms());

    chat.data = start;
    chat.len = p - start;

    if (target == NULL) {
        (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, chat.data,
                                      chat.len);
        return;
    }

    ngx_ws_relay_router_deliver(wc, target, &chat, 1);
}


static void
ngx_ws_relay_router_notification(ngx_ws_relay_conn_t *wc, json_t *message)
{
    json_t     *target, *action, *data, *notification;
    ngx_str_t   target_id, text;

    target = json_object_get(message, "targetUserId");

    if (ngx_ws_relay_json_falsy(target)) {
        ngx_ws_relay_router_error(wc,
                             "Missing targetUserId in notification message");
        return;
    }

    if (ngx_ws_relay_router_bad_target(wc, target)) {
        return;
    }

    action = json_object_get(message, "action");
    data = json_object_get(message, "data");

    notification = json_pack("{s:s, s:o, s:o, s:o, s:I}",
                        "type", "notification",
                        "action", ngx_ws_relay_json_falsy(action)
                                  ? json_string("general") : json_incref(action),
                        "data", ngx_ws_relay_json_falsy(data)
                                ? json_object() : json_incref(data),
                        "sender",
                        ngx_ws_relay_json_string(ngx_ws_relay_router_sender(wc)),
                        "timestamp", (json_int_t) ngx_ws_relay_now_ms());
    if (notification == NULL
        || ngx_ws_relay_json_dump(notification, &text) != NGX_OK)
    {
        json_decref(notification);
        ngx_ws_relay_router_send(wc, NULL);
        return;
    }

    json_decref(notification);

    target_id.data = (u_char *) json_string_value(target);
    target_id.len = json_string_length(target);

    ngx_ws_relay_router_deliver(wc, &target_id, &text, 0);
}


/* a target that is not a user id answers with an error */

static ngx_uint_t
ngx_ws_relay_router_bad_target(ngx_ws_relay_conn_t *wc, json_t *target)
{
    if (!json_is_string(target)) {
        ngx_ws_relay_router_error(wc, "targetUserId must be a string");
        return 1;
    }

    if (json_string_length(target) > NGX_WS_RELAY_MAX_USER_ID) {
        ngx_ws_relay_router_error(wc, "targetUserId is too long");
        return 1;
    }

    return 0;
}


/*
 * The reply, with "delivered", "connections" (not for chat) and
 * "timestamp", goes out when the delivery is done; replies go out in the
 * order of the requests.  A chat is settled by the first connection
 * reached.
 */

static void
ngx_ws_relay_router_deliver(ngx_ws_relay_conn_t *wc, ngx_str_t *target,
    ngx_str_t *message, ngx_uint_t chat)
{
    ngx_ws_relay_delivery_t  *d;

    d = ngx_ws_relay_delivery_create(ngx_ws_relay_router_delivered, wc,
                                     target, wc->connection->log);
    if (d == NULL) {
        ngx_ws_relay_router_error(wc, "Internal server error");
        return;
    }

    d->any = chat;
    ngx_queue_insert_tail(&wc->deliveries, &d->queue);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: %s to \"%V\"",
                   chat ? "chat" : "notification", target);

    ngx_ws_relay_delivery_start(d, message);
}


static void
ngx_ws_relay_router_delivered(ngx_ws_relay_delivery_t *d)
{
    u_char                   *p;
    ngx_queue_t              *q;
    ngx_ws_relay_conn_t      *wc;
    ngx_ws_relay_delivery_t  *head;
    u_char                    buf[sizeof("{\"type\":\"notification_result\","
                                         "\"targetUserId\":,"
                                         "\"delivered\":false,"
                                         "\"connections\":,\"timestamp\":}")
                                  + NGX_WS_RELAY_JSON_STR_LEN(
                                        NGX_WS_RELAY_MAX_USER_ID)
                                  + 2 * NGX_INT64_LEN];

    wc = d->data;

    if (wc == NULL) {
        /* the connection closed meanwhile */
        ngx_ws_relay_delivery_free(d);
        return;
    }

    while (!ngx_queue_empty(&wc->deliveries)) {
        q = ngx_queue_head(&wc->deliveries);
        head = ngx_queue_data(q, ngx_ws_relay_delivery_t, queue);

        if (!head->done) {
            return;
        }

        ngx_queue_remove(q);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                       "ws relay: delivery %uL replied: %ui delivered",
                       head->id, head->delivered);

        p = ngx_sprintf(buf, "{\"type\":\"%s\",\"targetUserId\":",
                        head->any ? "chat_delivered" : "notification_result");
        p = ngx_ws_relay_json_write_string(p, &head->user_id);
        p = ngx_sprintf(p, ",\"delivered\":%s",
                        head->delivered ? "true" : "false");

        if (!head->any) {
            p = ngx_sprintf(p, ",\"connections\":%ui", head->delivered);
        }

        p = ngx_sprintf(p, ",\"timestamp\":%uL}", ngx_ws_relay_now_ms());

        ngx_ws_relay_delivery_free(head);
        (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, buf, p - buf);
    }
}


static void
ngx_ws_relay_router_unsupported(ngx_ws_relay_conn_t *wc, json_t *type)
{
    char    *dumped;
    json_t  *json;

    if (type == NULL) {
        dumped = NULL;

    } else if (json_is_string(type)) {
        dumped = strdup(json_string_value(type));

    } else {
        dumped = json_dumps(type, JSON_ENCODE_ANY|JSON_COMPACT);
    }

    json = json_pack("{s:s, s:s+}",
                     "type", "error",
                     "message", "Unsupported message type: ",
                     dumped ? dumped : "undefined");
    free(dumped);

    ngx_ws_relay_router_send(wc, json);
}


/* takes the reference to json */

static void
ngx_ws_relay_router_send(ngx_ws_relay_conn_t *wc, json_t *json)
{
    ngx_str_t  text;

    if (json == NULL) {
        ngx_log_error(NGX_LOG_ALERT, wc->connection->log, 0,
                      "ws relay: could not build a reply");
        return;
    }

    if (ngx_ws_relay_json_dump(json, &text) == NGX_OK) {
        (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, text.data,
                                      text.len);
    }

    json_decref(json);
}


static void
ngx_ws_relay_router_error(ngx_ws_relay_conn_t *wc, const char *text)
{
    ngx_ws_relay_router_send(wc,
        json_pack("{s:s, s:s}", "type", "error", "message", text));
}


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_frame.h"
#include "ngx_ws_relay_history.h"
#include "ngx_ws_relay_json.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"
#include "ngx_ws_relay_shm.h"


/* the members of a client message that the protocol reads */
typedef enum {
    NGX_WS_RELAY_F_TYPE = 0,
    NGX_WS_RELAY_F_USER_ID,
    NGX_WS_RELAY_F_TARGET,
    NGX_WS_RELAY_F_TEXT,
    NGX_WS_RELAY_F_ACTION,
    NGX_WS_RELAY_F_DATA,
    NGX_WS_RELAY_F_SINCE,
    NGX_WS_RELAY_F_N
} ngx_ws_relay_field_e;


/* what a connection that joins its user is answered (history_join) */
#define NGX_WS_RELAY_JOINED_REGISTER  0
#define NGX_WS_RELAY_JOINED_RESUME    1
/* a "since" that this connection may not use: recovered is false */
#define NGX_WS_RELAY_JOINED_REFUSED   2


typedef void (*ngx_ws_relay_handler_pt)(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f);


typedef struct {
    ngx_str_t                 type;
    ngx_ws_relay_handler_pt   handler;
} ngx_ws_relay_route_t;


static ngx_int_t ngx_ws_relay_router_join(ngx_ws_relay_conn_t *wc,
    ngx_str_t *user_id);
static void ngx_ws_relay_router_leave(ngx_ws_relay_conn_t *wc);
static ngx_str_t *ngx_ws_relay_router_sender(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_router_welcome(ngx_ws_relay_conn_t *wc);
static ngx_int_t ngx_ws_relay_router_limit(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_router_register(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f);
static void ngx_ws_relay_router_resume(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f);
static ngx_int_t ngx_ws_relay_router_since(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_value_t *v, ngx_ws_relay_id_t *since);
static ngx_uint_t ngx_ws_relay_router_may_resume(ngx_ws_relay_conn_t *wc);
static void ngx_ws_relay_router_joined(ngx_ws_relay_conn_t *wc,
    ngx_uint_t type, ngx_int_t recovered);
static void ngx_ws_relay_router_ping(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f);
static void ngx_ws_relay_router_chat(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f);
static void ngx_ws_relay_router_notification(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f);
static void ngx_ws_relay_router_unsupported(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_value_t *type);
static ngx_int_t ngx_ws_relay_router_user_id(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_value_t *v, const char *name, u_char *buf,
    ngx_str_t *id);
static u_char *ngx_ws_relay_router_signed(u_char *p, ngx_str_t *sender);
static void ngx_ws_relay_router_deliver(ngx_ws_relay_conn_t *wc,
    ngx_str_t *target, ngx_str_t *message, ngx_uint_t chat);
static void ngx_ws_relay_router_delivered(ngx_ws_relay_delivery_t *d);
static void ngx_ws_relay_router_error(ngx_ws_relay_conn_t *wc,
    const char *text);
static void ngx_ws_relay_router_send_error(ngx_ws_relay_conn_t *wc,
    ngx_str_t *text);


static ngx_ws_relay_route_t  ngx_ws_relay_routes[] = {
    { ngx_string("register"), ngx_ws_relay_router_register },
    { ngx_string("ping"), ngx_ws_relay_router_ping },
    { ngx_string("chat"), ngx_ws_relay_router_chat },
    { ngx_string("notification"), ngx_ws_relay_router_notification },
    { ngx_string("resume"), ngx_ws_relay_router_resume },
    { ngx_null_string, NULL }
};


static ngx_ws_relay_json_field_t  ngx_ws_relay_fields[] = {
    { ngx_string("type"), { 0 } },
    { ngx_string("userId"), { 0 } },
    { ngx_string("targetUserId"), { 0 } },
    { ngx_string("text"), { 0 } },
    { ngx_string("action"), { 0 } },
    { ngx_string("data"), { 0 } },
    { ngx_string("since"), { 0 } }
};


/*
 * A connection that has just been upgraded: refused at capacity (close
 * 1013), or counted, given the identity that ws_relay_user_id set for it
 * (checked by the handshake; empty: none), and welcomed.  NGX_DECLINED:
 * refused, the close is on its way.
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
        ngx_ws_relay_router_error(wc, "Server is at capacity, please try "
                                      "again later");
        ngx_ws_relay_conn_close(wc, NGX_WS_RELAY_CLOSE_TRY_AGAIN,
                                "Try Again Later");
        return NGX_DECLINED;
    }

    ngx_ws_relay_stat_add(accepted, 1);
    ngx_ws_relay_registry_add(wc);

    if (user_id->len) {
        if (ngx_ws_relay_router_join(wc, user_id) != NGX_OK) {
            return NGX_ERROR;
        }

        wc->user_fixed = 1;
    }

    ngx_ws_relay_router_welcome(wc);

    if (wc->user_fixed && wc->conf->history.size) {
        /* live once the worker hears the user: nothing to answer then */
        ngx_ws_relay_history_join(wc, NULL, NULL, 0);
    }

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

    ngx_ws_relay_history_abandon(wc);

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
    u_char     *p, *start;
    ngx_str_t  *user;

    user = wc->user_fixed ? &wc->user->sn.str : NULL;

    start = ngx_ws_relay_json_scratch(
                sizeof("{\"type\":\"welcome\",\"message\":\"connected\","
                       "\"connectionId\":\"\",\"processId\":,"
                       "\"timestamp\":,\"userId\":}")
                + wc->id.len + 2 * NGX_INT64_LEN
                + (user ? NGX_WS_RELAY_JSON_STR_LEN(user->len) : 0));
    if (start == NULL) {
        return;
    }

    p = ngx_sprintf(start, "{\"type\":\"welcome\",\"message\":\"connected\","
                    "\"connectionId\":\"%V\",\"processId\":%P,"
                    "\"timestamp\":%uL", &wc->id, ngx_pid,
                    ngx_ws_relay_now_ms());

    if (user) {
        p = ngx_cpymem(p, ",\"userId\":", sizeof(",\"userId\":") - 1);
        p = ngx_ws_relay_json_write_string(p, user);
    }

    *p++ = '}';

    (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, start,
                                  p - start);
}


void
ngx_ws_relay_router_message(ngx_ws_relay_conn_t *wc, u_char *data,
    size_t len)
{
    u_char                      name[6 * sizeof("notification")];
    size_t                      n;
    ngx_int_t                   rc;
    const char                 *error;
    ngx_ws_relay_route_t       *route;
    ngx_ws_relay_json_value_t  *type;
    ngx_ws_relay_json_field_t   f[NGX_WS_RELAY_F_N];

    if (wc->conf->limit_rate && ngx_ws_relay_router_limit(wc) != NGX_OK) {
        return;
    }

    ngx_ws_relay_stat_add(messages_in, 1);

    ngx_memcpy(f, ngx_ws_relay_fields, sizeof(f));

    rc = ngx_ws_relay_json_read(data, len, f, NGX_WS_RELAY_F_N, &error);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                      "ws relay: invalid message from client: %s",
                      rc == NGX_DECLINED ? "not an object" : error);

        ngx_ws_relay_router_error(wc, "Invalid message format");
        return;
    }

    type = &f[NGX_WS_RELAY_F_TYPE].value;

    /* the longest type, each byte written as \uXXXX, at most */

    if (type->type == NGX_WS_RELAY_JSON_STRING
        && type->text.len - 2 <= sizeof(name))
    {
        n = ngx_ws_relay_json_unescape(name, type);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                       "ws relay: message of type \"%*s\"", n, name);

        for (route = ngx_ws_relay_routes; route->handler; route++) {
            if (route->type.len == n
                && ngx_strncmp(route->type.data, name, n) == 0)
            {
                route->handler(wc, f);
                return;
            }
        }
    }

    ngx_ws_relay_router_unsupported(wc, type);
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
 * {"type":"register","userId":..[,"since":..]}: the connection joins the
 * user.  With a history, the reply comes once this worker hears the user's
 * channel, and after a "since", it says whether what was missed is
 * replayed (recovered), before the replay.  Meanwhile the connection's next
 * messages wait (ngx_ws_relay_conn_process()).
 */

static void
ngx_ws_relay_router_register(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f)
{
    u_char                     *p, buf[NGX_WS_RELAY_MAX_USER_ID];
    u_char                      escaped[3 * NGX_WS_RELAY_MAX_USER_ID];
    ngx_str_t                   user_id, *fixed;
    ngx_uint_t                  type;
    ngx_ws_relay_id_t   since, *after;

    if (ngx_ws_relay_json_falsy(&f[NGX_WS_RELAY_F_USER_ID].value)) {
        ngx_ws_relay_router_error(wc, "Missing userId in register message");
        return;
    }

    if (ngx_ws_relay_router_user_id(wc, &f[NGX_WS_RELAY_F_USER_ID].value,
                                    "userId", buf, &user_id)
        != NGX_OK)
    {
        return;
    }

    after = NULL;

    if (f[NGX_WS_RELAY_F_SINCE].value.type != NGX_WS_RELAY_JSON_NONE) {
        if (ngx_ws_relay_router_since(wc, &f[NGX_WS_RELAY_F_SINCE].value,
                                      &since)
            != NGX_OK)
        {
            return;
        }

        after = &since;
    }

    fixed = wc->user_fixed ? &wc->user->sn.str : NULL;

    if (fixed
        && (user_id.len != fixed->len
            || ngx_memcmp(user_id.data, fixed->data, user_id.len) != 0))
    {
        /* a client's string: escaped, so it cannot forge a log line */
        p = (u_char *) ngx_escape_uri(escaped, user_id.data, user_id.len,
                                      NGX_ESCAPE_URI_COMPONENT);

        ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                      "ws relay: client tried to register as \"%*s\"",
                      p - escaped, escaped);

        ngx_ws_relay_router_error(wc, "Cannot register as another user: the "
                                      "user id is set by the server");
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

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: connection %V registered", &wc->id);

    type = NGX_WS_RELAY_JOINED_REGISTER;

    if (!wc->conf->history.size) {
        ngx_ws_relay_router_joined(wc, type, after ? 0 : -1);
        return;
    }

    if (after && !ngx_ws_relay_router_may_resume(wc)) {
        type |= NGX_WS_RELAY_JOINED_REFUSED;
        after = NULL;
    }

    ngx_ws_relay_history_join(wc, after, ngx_ws_relay_router_joined, type);
}


/*
 * {"type":"resume","since":..}: what the connection's user missed after
 * since, replayed after the reply; a type unknown without history, as it
 * was to the old server.
 */

static void
ngx_ws_relay_router_resume(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f)
{
    ngx_uint_t                  type;
    ngx_ws_relay_id_t   since;

    if (!wc->conf->history.size) {
        ngx_ws_relay_router_unsupported(wc, &f[NGX_WS_RELAY_F_TYPE].value);
        return;
    }

    if (ngx_ws_relay_router_since(wc, &f[NGX_WS_RELAY_F_SINCE].value, &since)
        != NGX_OK)
    {
        return;
    }

    if (wc->user == NULL) {
        ngx_ws_relay_router_error(wc, "Resume needs a registered user");
        return;
    }

    type = NGX_WS_RELAY_JOINED_RESUME;

    if (!ngx_ws_relay_router_may_resume(wc)) {
        ngx_ws_relay_router_joined(wc, type | NGX_WS_RELAY_JOINED_REFUSED,
                                   -1);
        return;
    }

    ngx_ws_relay_history_join(wc, &since, ngx_ws_relay_router_joined, type);
}


/* "since": "0", "<ms>" or "<ms>-<seq>", a string; otherwise an error reply */

static ngx_int_t
ngx_ws_relay_router_since(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_value_t *v, ngx_ws_relay_id_t *since)
{
    u_char     buf[NGX_WS_RELAY_ID_LEN];
    ngx_str_t  text;

    /* decoding never makes a string longer than its JSON text */

    if (v->type == NGX_WS_RELAY_JSON_STRING
        && v->text.len - 2 <= NGX_WS_RELAY_ID_LEN)
    {
        text.data = buf;
        text.len = ngx_ws_relay_json_unescape(buf, v);

        if (ngx_ws_relay_wire_id_parse(&text, since) == NGX_OK) {
            return NGX_OK;
        }
    }

    ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                  "ws relay: invalid \"since\" from client");

    ngx_ws_relay_router_error(wc, "since must be a message id");

    return NGX_ERROR;
}


/* ngx_ws_relay_history_may_replay(), and a log line when it may not */

static ngx_uint_t
ngx_ws_relay_router_may_resume(ngx_ws_relay_conn_t *wc)
{
    if (ngx_ws_relay_history_may_replay(wc)) {
        return 1;
    }

    ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                  "ws relay: no replay to a user id the client chose "
                  "(ws_relay_history resume_unverified=on allows it)");

    return 0;
}


/*
 * {"type":"register","status":"success","userId":..,"timestamp":..} or
 * {"type":"resume","status":"success","timestamp":..}, with
 * "recovered" after a "since".
 */

static void
ngx_ws_relay_router_joined(ngx_ws_relay_conn_t *wc, ngx_uint_t type,
    ngx_int_t recovered)
{
    u_char     *p, *start;
    ngx_str_t  *user_id;

    if (type & NGX_WS_RELAY_JOINED_REFUSED) {
        recovered = 0;
    }

    if (recovered >= 0) {
        ngx_ws_relay_stat_add(resumes, 1);
        ngx_ws_relay_stat_add(resumes_unrecovered, recovered ? 0 : 1);
    }

    user_id = &wc->user->sn.str;

    start = ngx_ws_relay_json_scratch(
                sizeof("{\"type\":\"register\",\"status\":\"success\","
                       "\"userId\":,\"timestamp\":,\"recovered\":false}")
                + NGX_WS_RELAY_JSON_STR_LEN(user_id->len) + NGX_INT64_LEN);
    if (start == NULL) {
        return;
    }

    if (type & NGX_WS_RELAY_JOINED_RESUME) {
        p = ngx_cpymem(start, "{\"type\":\"resume\",\"status\":\"success\"",
                       sizeof("{\"type\":\"resume\",\"status\":\"success\"")
                       - 1);

    } else {
        p = ngx_cpymem(start, "{\"type\":\"register\",\"status\":\"success\","
                              "\"userId\":",
                       sizeof("{\"type\":\"register\",\"status\":\"success\","
                              "\"userId\":") - 1);
        p = ngx_ws_relay_json_write_string(p, user_id);
    }

    p = ngx_sprintf(p, ",\"timestamp\":%uL", ngx_ws_relay_now_ms());

    if (recovered >= 0) {
        p = ngx_sprintf(p, ",\"recovered\":%s", recovered ? "true" : "false");
    }

    *p++ = '}';

    (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, start,
                                  p - start);
}


static void
ngx_ws_relay_router_ping(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f)
{
    u_char  *p, buf[sizeof("{\"type\":\"pong\",\"timestamp\":}")
                    + NGX_INT64_LEN];

    p = ngx_sprintf(buf, "{\"type\":\"pong\",\"timestamp\":%uL}",
                    ngx_ws_relay_now_ms());

    (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, buf, p - buf);
}


/*
 * {"type":"chat","text":<text>,"sender":..,"timestamp":..} to every
 * connection of the target, or back to the sender when there is none.
 */

static void
ngx_ws_relay_router_chat(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f)
{
    u_char                     *p, *start, buf[NGX_WS_RELAY_MAX_USER_ID];
    ngx_str_t                   target, chat, *sender;
    ngx_ws_relay_json_value_t  *to, *text;

    to = &f[NGX_WS_RELAY_F_TARGET].value;
    text = &f[NGX_WS_RELAY_F_TEXT].value;

    if (!ngx_ws_relay_json_falsy(to)
        && ngx_ws_relay_router_user_id(wc, to, "targetUserId", buf, &target)
           != NGX_OK)
    {
        return;
    }

    sender = ngx_ws_relay_router_sender(wc);

    start = ngx_ws_relay_json_scratch(
                sizeof("{\"type\":\"chat\",\"text\":,\"sender\":,"
                       "\"timestamp\":}")
                + text->text.len + NGX_WS_RELAY_JSON_STR_LEN(sender->len)
                + NGX_INT64_LEN);
    if (start == NULL) {
        ngx_ws_relay_router_error(wc, "Internal server error");
        return;
    }

    p = ngx_cpymem(start, "{\"type\":\"chat\"",
                   sizeof("{\"type\":\"chat\"") - 1);

    /* a missing text stays missing, as JSON.stringify() leaves it out */

    if (text->type != NGX_WS_RELAY_JSON_NONE) {
        p = ngx_cpymem(p, ",\"text\":", sizeof(",\"text\":") - 1);
        p = ngx_ws_relay_json_copy(p, &text->text);
    }

    p = ngx_ws_relay_router_signed(p, sender);

    chat.data = start;
    chat.len = p - start;

    if (ngx_ws_relay_json_falsy(to)) {
        /* no target: the message comes back to its sender */
        (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, chat.data,
                                      chat.len);
        return;
    }

    ngx_ws_relay_router_deliver(wc, &target, &chat, 1);
}


/*
 * {"type":"notification","action":..,"data":..,"sender":..,"timestamp":..}
 * to every connection of the target; action defaults to "general" and
 * data to {}, as the old server's "||" did.
 */

static void
ngx_ws_relay_router_notification(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_field_t *f)
{
    u_char                     *p, *start, buf[NGX_WS_RELAY_MAX_USER_ID];
    ngx_str_t                   target, text, *sender;
    ngx_ws_relay_json_value_t  *action, *data;

    if (ngx_ws_relay_json_falsy(&f[NGX_WS_RELAY_F_TARGET].value)) {
        ngx_ws_relay_router_error(wc, "Missing targetUserId in notification "
                                      "message");
        return;
    }

    if (ngx_ws_relay_router_user_id(wc, &f[NGX_WS_RELAY_F_TARGET].value,
                                    "targetUserId", buf, &target)
        != NGX_OK)
    {
        return;
    }

    action = &f[NGX_WS_RELAY_F_ACTION].value;
    data = &f[NGX_WS_RELAY_F_DATA].value;
    sender = ngx_ws_relay_router_sender(wc);

    start = ngx_ws_relay_json_scratch(
                sizeof("{\"type\":\"notification\",\"action\":\"general\","
                       "\"data\":{},\"sender\":,\"timestamp\":}")
                + action->text.len + data->text.len
                + NGX_WS_RELAY_JSON_STR_LEN(sender->len) + NGX_INT64_LEN);
    if (start == NULL) {
        ngx_ws_relay_router_error(wc, "Internal server error");
        return;
    }

    p = ngx_cpymem(start, "{\"type\":\"notification\",\"action\":",
                   sizeof("{\"type\":\"notification\",\"action\":") - 1);

    if (ngx_ws_relay_json_falsy(action)) {
        p = ngx_cpymem(p, "\"general\"", sizeof("\"general\"") - 1);

    } else {
        p = ngx_ws_relay_json_copy(p, &action->text);
    }

    p = ngx_cpymem(p, ",\"data\":", sizeof(",\"data\":") - 1);

    if (ngx_ws_relay_json_falsy(data)) {
        p = ngx_cpymem(p, "{}", 2);

    } else {
        p = ngx_ws_relay_json_copy(p, &data->text);
    }

    p = ngx_ws_relay_router_signed(p, sender);

    text.data = start;
    text.len = p - start;

    ngx_ws_relay_router_deliver(wc, &target, &text, 0);
}


/*
 * A user id named by a client: a string of at most NGX_WS_RELAY_MAX_USER_ID
 * bytes once decoded, into buf; otherwise an error reply.
 */

static ngx_int_t
ngx_ws_relay_router_user_id(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_value_t *v, const char *name, u_char *buf,
    ngx_str_t *id)
{
    u_char     *p, text[sizeof("targetUserId must be a string")];
    ngx_str_t   error;

    if (v->type != NGX_WS_RELAY_JSON_STRING) {
        p = ngx_sprintf(text, "%s must be a string", name);
        goto failed;
    }

    /* decoding never makes a string longer than its JSON text */

    if (v->text.len - 2 <= NGX_WS_RELAY_MAX_USER_ID) {
        id->data = buf;
        id->len = ngx_ws_relay_json_unescape(buf, v);
        return NGX_OK;
    }

    if (!v->escaped) {
        p = ngx_sprintf(text, "%s is too long", name);
        goto failed;
    }

    /* escapes may make it short enough: decoded apart */

    id->data = ngx_alloc(v->text.len, wc->connection->log);
    if (id->data == NULL) {
        ngx_ws_relay_router_error(wc, "Internal server error");
        return NGX_ERROR;
    }

    id->len = ngx_ws_relay_json_unescape(id->data, v);

    if (id->len <= NGX_WS_RELAY_MAX_USER_ID) {
        ngx_memcpy(buf, id->data, id->len);
        ngx_free(id->data);
        id->data = buf;
        return NGX_OK;
    }

    ngx_free(id->data);
    p = ngx_sprintf(text, "%s is too long", name);

failed:

    error.data = text;
    error.len = p - text;

    ngx_ws_relay_router_send_error(wc, &error);

    return NGX_ERROR;
}


/*
 * ,"sender":..,"timestamp":..} that end a relayed message: at most
 * NGX_WS_RELAY_JSON_STR_LEN(sender->len) + NGX_INT64_LEN bytes beyond
 * the text of the keys.
 */

static u_char *
ngx_ws_relay_router_signed(u_char *p, ngx_str_t *sender)
{
    p = ngx_cpymem(p, ",\"sender\":", sizeof(",\"sender\":") - 1);
    p = ngx_ws_relay_json_write_string(p, sender);

    return ngx_sprintf(p, ",\"timestamp\":%uL}", ngx_ws_relay_now_ms());
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

    if (wc->conf->history.size) {
        d->history = &wc->conf->history;
    }

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
                                  + 2 * NGX_INT64_LEN
                                  + NGX_WS_RELAY_DELIVERY_QUEUED_LEN];

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

        if (head->history) {
            p = ngx_ws_relay_delivery_write_queued(p, head);
        }

        p = ngx_sprintf(p, ",\"timestamp\":%uL}", ngx_ws_relay_now_ms());

        ngx_ws_relay_delivery_free(head);
        (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, buf, p - buf);
    }
}


/* "Unsupported message type: " and String(type), as the old server said */

static void
ngx_ws_relay_router_unsupported(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_json_value_t *type)
{
    u_char     *p;
    ngx_str_t   text;

    text.data = ngx_alloc(sizeof("Unsupported message type: ") - 1
                          + NGX_WS_RELAY_JSON_JS_LEN(type->text.len),
                          wc->connection->log);
    if (text.data == NULL) {
        ngx_ws_relay_router_error(wc, "Internal server error");
        return;
    }

    p = ngx_cpymem(text.data, "Unsupported message type: ",
                   sizeof("Unsupported message type: ") - 1);
    p = ngx_ws_relay_json_js_string(p, type);

    text.len = p - text.data;

    ngx_ws_relay_router_send_error(wc, &text);

    ngx_free(text.data);
}


static void
ngx_ws_relay_router_error(ngx_ws_relay_conn_t *wc, const char *text)
{
    ngx_str_t  s;

    s.data = (u_char *) text;
    s.len = ngx_strlen(text);

    ngx_ws_relay_router_send_error(wc, &s);
}


/* {"type":"error","message":<text>} */

static void
ngx_ws_relay_router_send_error(ngx_ws_relay_conn_t *wc, ngx_str_t *text)
{
    u_char  *p, *start;

    start = ngx_ws_relay_json_scratch(
                sizeof("{\"type\":\"error\",\"message\":}")
                + NGX_WS_RELAY_JSON_STR_LEN(text->len));
    if (start == NULL) {
        return;
    }

    p = ngx_cpymem(start, "{\"type\":\"error\",\"message\":",
                   sizeof("{\"type\":\"error\",\"message\":") - 1);
    p = ngx_ws_relay_json_write_string(p, text);
    *p++ = '}';

    (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, start,
                                  p - start);
}

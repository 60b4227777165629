
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_frame.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"


typedef void (*ngx_ws_relay_handler_pt)(ngx_ws_relay_conn_t *wc,
    json_t *message);


typedef struct {
    ngx_str_t                 type;
    ngx_ws_relay_handler_pt   handler;
} ngx_ws_relay_route_t;


/* a member of a message read without jansson: a string, as it is */
typedef struct {
    ngx_str_t                 name;
    ngx_str_t                 value;
} ngx_ws_relay_member_t;


/* members of a message read without jansson, at most */
#define NGX_WS_RELAY_FAST_MEMBERS  8


static ngx_int_t ngx_ws_relay_router_fast(ngx_ws_relay_conn_t *wc,
    u_char *data, size_t len);
static u_char *ngx_ws_relay_fast_string(u_char *p, u_char *end,
    ngx_str_t *s, ngx_uint_t *high);
static u_char *ngx_ws_relay_fast_space(u_char *p, u_char *end);
static ngx_str_t *ngx_ws_relay_fast_member(ngx_ws_relay_member_t *members,
    ngx_uint_t n, char *name);
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
static ngx_int_t ngx_ws_relay_router_bad_target(ngx_ws_relay_conn_t *wc,
    json_t *target);
static void ngx_ws_relay_router_chat_out(ngx_ws_relay_conn_t *wc,
    ngx_str_t *target, ngx_str_t *text);
static void ngx_ws_relay_router_deliver(ngx_ws_relay_conn_t *wc,
    ngx_str_t *target, ngx_str_t *message, ngx_uint_t chat);
static void ngx_ws_relay_router_delivered(ngx_ws_relay_delivery_t *d);
static ngx_int_t ngx_ws_relay_json_depth_ok(u_char *p, size_t len);
static ngx_int_t ngx_ws_relay_json_falsy(json_t *value);
static json_t *ngx_ws_relay_json_str(ngx_str_t *s);
static u_char *ngx_ws_relay_json_write_str(u_char *p, ngx_str_t *s);
static u_char *ngx_ws_relay_scratch_reserve(size_t size);


static ngx_ws_relay_route_t  ngx_ws_relay_routes[] = {
    { ngx_string("register"), ngx_ws_relay_router_register },
    { ngx_string("ping"), ngx_ws_relay_router_ping },
    { ngx_string("chat"), ngx_ws_relay_router_chat },
    { ngx_string("notification"), ngx_ws_relay_router_notification },
    { ngx_null_string, NULL }
};


static u_char  *ngx_ws_relay_scratch;
static size_t   ngx_ws_relay_scratch_size;


void
ngx_ws_relay_router_welcome(ngx_ws_relay_conn_t *wc)
{
    json_t  *json;

    json = json_pack("{s:s, s:s, s:o, s:I, s:I}",
                     "type", "welcome",
                     "message", "connected",
                     "connectionId", ngx_ws_relay_json_str(&wc->id),
                     "processId", (json_int_t) ngx_pid,
                     "timestamp", (json_int_t) ngx_ws_relay_now_ms());

    if (json && wc->user_fixed) {
        json_object_set_new(json, "userId",
                            ngx_ws_relay_json_str(&wc->user->sn.str));
    }

    ngx_ws_relay_router_send(wc, json);
}


void
ngx_ws_relay_router_capacity(ngx_ws_relay_conn_t *wc)
{
    ngx_ws_relay_router_error(wc,
                          "Server is at capacity, please try again later");
}


void
ngx_ws_relay_router_rate_limited(ngx_ws_relay_conn_t *wc)
{
    ngx_ws_relay_router_error(wc, "Rate limit exceeded, message dropped");
}


void
ngx_ws_relay_router_message(ngx_ws_relay_conn_t *wc, u_char *data,
    size_t len)
{
    json_t                *message, *type;
    ngx_str_t              name;
    json_error_t           error;
    ngx_ws_relay_route_t  *route;

    if (ngx_ws_relay_router_fast(wc, data, len) == NGX_OK) {
        return;
    }

    message = NULL;

    if (ngx_ws_relay_json_depth_ok(data, len) == NGX_OK) {
        message = json_loadb((char *) data, len, JSON_REJECT_DUPLICATES,
                             &error);
    } else {
        ngx_cpystrn((u_char *) error.text, (u_char *) "nested too deeply",
                    JSON_ERROR_TEXT_LENGTH);
    }

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
 * The usual messages, ping and chat as flat objects of plain strings (no
 * escapes, no control characters), are read here without jansson: their
 * strings are their values as they are, and written out as they came.
 * Anything else declines, every malformed message included, and jansson
 * answers it as it answers any message.
 */

static ngx_int_t
ngx_ws_relay_router_fast(ngx_ws_relay_conn_t *wc, u_char *data, size_t len)
{
    u_char                 *p, *end;
    uint32_t                state;
    ngx_str_t              *type, *target, *text, text_json;
    ngx_uint_t              i, j, n, high;
    ngx_ws_relay_member_t   members[NGX_WS_RELAY_FAST_MEMBERS];

    end = data + len;
    high = 0;

    p = ngx_ws_relay_fast_space(data, end);

    if (p == end || *p++ != '{') {
        return NGX_DECLINED;
    }

    for (n = 0; /* void */ ; n++) {

        if (n == NGX_WS_RELAY_FAST_MEMBERS) {
            return NGX_DECLINED;
        }

        p = ngx_ws_relay_fast_string(p, end, &members[n].name, &high);

        if (p == NULL || p == end || *p++ != ':') {
            return NGX_DECLINED;
        }

        p = ngx_ws_relay_fast_string(p, end, &members[n].value, &high);

        if (p == NULL || p == end) {
            return NGX_DECLINED;
        }

        if (*p == '}') {
            n++;
            break;
        }

        if (*p++ != ',') {
            return NGX_DECLINED;
        }
    }

    if (ngx_ws_relay_fast_space(p + 1, end) != end) {
        return NGX_DECLINED;
    }

    /* what jansson refuses: not UTF-8 (binary frames), duplicate names */

    state = 0;

    if (high
        && (ngx_ws_relay_utf8_check(&state, data, len) != NGX_OK
            || !ngx_ws_relay_utf8_complete(state)))
    {
        return NGX_DECLINED;
    }

    for (i = 1; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (members[i].name.len == members[j].name.len
                && ngx_memcmp(members[i].name.data, members[j].name.data,
                              members[i].name.len)
                   == 0)
            {
                return NGX_DECLINED;
            }
        }
    }

    type = ngx_ws_relay_fast_member(members, n, "type");

    if (type == NULL) {
        return NGX_DECLINED;
    }

    if (type->len == 4 && ngx_strncmp(type->data, "ping", 4) == 0) {
        ngx_ws_relay_router_ping(wc, NULL);
        return NGX_OK;
    }

    if (type->len != 4 || ngx_strncmp(type->data, "chat", 4) != 0) {
        return NGX_DECLINED;
    }

    target = ngx_ws_relay_fast_member(members, n, "targetUserId");
    text = ngx_ws_relay_fast_member(members, n, "text");

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


/*
 * A string with nothing to unescape, and the white space around it;
 * high: it has non-ASCII bytes.
 */

static u_char *
ngx_ws_relay_fast_string(u_char *p, u_char *end, ngx_str_t *s,
    ngx_uint_t *high)
{
    p = ngx_ws_relay_fast_space(p, end);

    if (p == end || *p++ != '"') {
        return NULL;
    }

    s->data = p;

    for ( /* void */ ; p < end; p++) {

        if (*p == '"') {
            s->len = p - s->data;
            return ngx_ws_relay_fast_space(p + 1, end);
        }

        if (*p < 0x20 || *p == '\\') {
            return NULL;
        }

        if (*p >= 0x80) {
            *high = 1;
        }
    }

    return NULL;
}


/* JSON's white space, as jansson skips it */

static u_char *
ngx_ws_relay_fast_space(u_char *p, u_char *end)
{
    while (p < end
           && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}


static ngx_str_t *
ngx_ws_relay_fast_member(ngx_ws_relay_member_t *members, ngx_uint_t n,
    char *name)
{
    size_t      len;
    ngx_uint_t  i;

    len = ngx_strlen(name);

    for (i = 0; i < n; i++) {
        if (members[i].name.len == len
            && ngx_strncmp(members[i].name.data, name, len) == 0)
        {
            return &members[i].value;
        }
    }

    return NULL;
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

    if (ngx_ws_relay_registry_set_user(wc, &user_id) != NGX_OK) {
        ngx_ws_relay_router_error(wc, "Internal server error");
        return;
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

    sender = ngx_ws_relay_conn_sender(wc);

    start = ngx_ws_relay_scratch_reserve(
                sizeof("{\"type\":\"chat\",\"text\":,\"sender\":,"
                       "\"timestamp\":}")
                + (text ? text->len : 0) + 6 * sender->len + 2
                + NGX_INT64_LEN);
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
        p = ngx_ws_relay_json_write_str(p, sender);
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
                        ngx_ws_relay_json_str(ngx_ws_relay_conn_sender(wc)),
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

static ngx_int_t
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
                                  + 6 * NGX_WS_RELAY_MAX_USER_ID + 2
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

        p = ngx_sprintf(buf, "{\"type\":\"%s\",\"targetUserId\":",
                        head->any ? "chat_delivered" : "notification_result");
        p = ngx_ws_relay_json_write_str(p, &head->user_id);
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


/*
 * Dumps JSON into the worker's scratch buffer; the text lives until the
 * next dump.
 */

ngx_int_t
ngx_ws_relay_json_dump(json_t *json, ngx_str_t *out)
{
    size_t  n;

    n = 0;

    do {
        if (ngx_ws_relay_scratch_reserve(n) == NULL) {
            return NGX_ERROR;
        }

        n = json_dumpb(json, (char *) ngx_ws_relay_scratch,
                       ngx_ws_relay_scratch_size,
                       JSON_COMPACT|JSON_PRESERVE_ORDER);

        if (n == 0) {
            return NGX_ERROR;
        }

    } while (n > ngx_ws_relay_scratch_size);

    out->data = ngx_ws_relay_scratch;
    out->len = n;

    return NGX_OK;
}


/* the scratch buffer, with room for at least size bytes */

static u_char *
ngx_ws_relay_scratch_reserve(size_t size)
{
    u_char  *p;

    if (ngx_ws_relay_scratch && size <= ngx_ws_relay_scratch_size) {
        return ngx_ws_relay_scratch;
    }

    size = ngx_max(4096, 2 * size);

    p = ngx_alloc(size, ngx_cycle->log);
    if (p == NULL) {
        return NULL;
    }

    if (ngx_ws_relay_scratch) {
        ngx_free(ngx_ws_relay_scratch);
    }

    ngx_ws_relay_scratch = p;
    ngx_ws_relay_scratch_size = size;

    return p;
}


/* jansson nests up to 2048 levels deep: clients get far fewer */

static ngx_int_t
ngx_ws_relay_json_depth_ok(u_char *p, size_t len)
{
    u_char      *end;
    ngx_uint_t   depth, in_string;

    depth = 0;
    in_string = 0;

    for (end = p + len; p < end; p++) {

        if (in_string) {
            if (*p == '\\') {
                p++;

            } else if (*p == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > NGX_WS_RELAY_MAX_JSON_DEPTH) {
                return NGX_ERROR;
            }
            break;

        case ']':
        case '}':
            if (depth) {
                depth--;
            }
            break;
        }
    }

    return NGX_OK;
}


/* what JavaScript calls falsy, as the old server tested fields */

static ngx_int_t
ngx_ws_relay_json_falsy(json_t *value)
{
    return value == NULL
           || json_is_null(value)
           || json_is_false(value)
           || (json_is_string(value) && json_string_length(value) == 0)
           || (json_is_integer(value) && json_integer_value(value) == 0)
           || (json_is_real(value) && json_real_value(value) == 0);
}


static json_t *
ngx_ws_relay_json_str(ngx_str_t *s)
{
    return json_stringn((char *) s->data, s->len);
}


/*
 * A JSON string as jansson writes it (no JSON_ENSURE_ASCII): '"', '\\'
 * and control characters escaped, the rest as it is.  s must be UTF-8;
 * the output takes at most 6 * s->len + 2 bytes.
 */

static u_char *
ngx_ws_relay_json_write_str(u_char *p, ngx_str_t *s)
{
    u_char  c, *src, *end;

    static u_char  hex[] = "0123456789ABCDEF";

    *p++ = '"';

    for (src = s->data, end = src + s->len; src < end; src++) {
        c = *src;

        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = c;
            continue;
        }

        *p++ = '\\';

        switch (c) {

        case '"':
        case '\\':
            *p++ = c;
            break;

        case '\b':
            *p++ = 'b';
            break;

        case '\f':
            *p++ = 'f';
            break;

        case '\n':
            *p++ = 'n';
            break;

        case '\r':
            *p++ = 'r';
            break;

        case '\t':
            *p++ = 't';
            break;

        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }

    *p++ = '"';

    return p;
}


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_json.h"
#include "ngx_ws_relay_presence.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_shm.h"


/*
 * The HTTP API, as location handlers: placed and protected with ordinary
 * nginx configuration.  Figures cover the whole nginx instance: every
 * worker's slot of the shared zone.
 */


typedef ngx_int_t (*ngx_ws_relay_api_pt)(ngx_http_request_t *r);


typedef struct {
    ngx_str_t             name;
    ngx_uint_t            methods;
    ngx_ws_relay_api_pt   handler;
} ngx_ws_relay_api_route_t;


typedef struct ngx_ws_relay_metric_s  ngx_ws_relay_metric_t;

typedef u_char *(*ngx_ws_relay_metric_pt)(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot);

struct ngx_ws_relay_metric_s {
    const char              *name;
    const char              *type;
    const char              *help;
    size_t                   offset;
    ngx_ws_relay_metric_pt   write;
};


static ngx_int_t ngx_ws_relay_api_preflight(ngx_http_request_t *r);
static ngx_int_t ngx_ws_relay_api_health(ngx_http_request_t *r);
static ngx_int_t ngx_ws_relay_api_connections(ngx_http_request_t *r);
static ngx_int_t ngx_ws_relay_api_send(ngx_http_request_t *r);
static void ngx_ws_relay_api_send_body(ngx_http_request_t *r);
static ngx_int_t ngx_ws_relay_api_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static void ngx_ws_relay_api_delivered(ngx_ws_relay_delivery_t *d);
static ngx_int_t ngx_ws_relay_api_redis_info(ngx_http_request_t *r);
static void ngx_ws_relay_api_presence(ngx_array_t *nodes, void *data);
static ngx_int_t ngx_ws_relay_api_node_pid(ngx_str_t *node, char *pid);
static ngx_int_t ngx_ws_relay_api_presence_reply(ngx_http_request_t *r,
    ngx_array_t *nodes);
static ngx_int_t ngx_ws_relay_api_metrics(ngx_http_request_t *r);
static json_t *ngx_ws_relay_api_workers(ngx_uint_t *connections,
    ngx_uint_t *degraded);
static ngx_uint_t ngx_ws_relay_api_max_connections(void);
static ngx_int_t ngx_ws_relay_api_reply(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);
static ngx_int_t ngx_ws_relay_api_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *text);
static void ngx_ws_relay_api_finish(ngx_http_request_t *r, ngx_int_t rc);


static u_char *ngx_ws_relay_api_metric_value(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot);
static u_char *ngx_ws_relay_api_metric_redis_up(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot);
static u_char *ngx_ws_relay_api_metric_rtt(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot);
static u_char *ngx_ws_relay_api_metric_closes(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot);


#define ngx_ws_relay_counter(name, help, field)                               \
    { name, "counter", help, offsetof(ngx_ws_relay_slot_t, field),            \
      ngx_ws_relay_api_metric_value }


static const ngx_ws_relay_metric_t  ngx_ws_relay_metrics[] = {
    { "ws_relay_connections", "gauge", "WebSocket connections open",
      offsetof(ngx_ws_relay_slot_t, connections),
      ngx_ws_relay_api_metric_value },
    { "ws_relay_users", "gauge", "Registered users with a connection",
      offsetof(ngx_ws_relay_slot_t, users), ngx_ws_relay_api_metric_value },
    ngx_ws_relay_counter("ws_relay_connections_accepted_total",
                         "WebSocket handshakes completed", accepted),
    ngx_ws_relay_counter("ws_relay_connections_rejected_total",
                         "Connections refused at capacity (close 1013)",
                         rejected),
    ngx_ws_relay_counter("ws_relay_messages_received_total",
                         "WebSocket messages received from clients",
                         messages_in),
    ngx_ws_relay_counter("ws_relay_messages_sent_total",
                         "WebSocket messages queued to clients",
                         messages_out),
    ngx_ws_relay_counter("ws_relay_bytes_received_total",
                         "Bytes read from WebSocket clients", bytes_in),
    ngx_ws_relay_counter("ws_relay_bytes_sent_total",
                         "Bytes written to WebSocket clients", bytes_out),
    ngx_ws_relay_counter("ws_relay_deliveries_total",
                         "Messages sent to a user (chat, notification, API)",
                         deliveries),
    ngx_ws_relay_counter("ws_relay_delivery_timeouts_total",
                         "Deliveries whose acks did not all arrive in time",
                         delivery_timeouts),
    ngx_ws_relay_counter("ws_relay_history_stored_total",
                         "Messages kept in their user's history",
                         history_stored),
    ngx_ws_relay_counter("ws_relay_history_failed_total",
                         "Messages that history was on for and Redis did not "
                         "keep", history_failed),
    ngx_ws_relay_counter("ws_relay_resumes_total",
                         "Registers and resumes with a since", resumes),
    ngx_ws_relay_counter("ws_relay_resumes_unrecovered_total",
                         "Resumes answered recovered:false",
                         resumes_unrecovered),
    ngx_ws_relay_counter("ws_relay_replayed_total",
                         "Kept messages replayed to resuming connections",
                         replayed),
    { "ws_relay_redis_up", "gauge",
      "1 when both Redis links of the worker are ready",
      offsetof(ngx_ws_relay_slot_t, redis_state),
      ngx_ws_relay_api_metric_redis_up },
    ngx_ws_relay_counter("ws_relay_redis_reconnects_total",
                         "Times the worker got Redis back after losing it",
                         redis_reconnects),
    ngx_ws_relay_counter("ws_relay_redis_failovers_total",
                         "Times the sentinels or the cluster named another "
                         "master", redis_failovers),
    ngx_ws_relay_counter("ws_relay_redis_topology_refreshes_total",
                         "Times a new slot map of the Redis Cluster was "
                         "followed", redis_topology_refreshes),
    ngx_ws_relay_counter("ws_relay_redis_errors_total",
                         "Redis errors: failed connects, lost links, error "
                         "replies", redis_errors),
    { "ws_relay_redis_rtt_seconds", "gauge",
      "Last round trip through Redis (publish to own subscriber)",
      offsetof(ngx_ws_relay_slot_t, redis_rtt_us),
      ngx_ws_relay_api_metric_rtt },
    { "ws_relay_closes_total", "counter",
      "WebSocket connections closed, by close code (1006: no close frame)",
      offsetof(ngx_ws_relay_slot_t, closes),
      ngx_ws_relay_api_metric_closes }
};

#define NGX_WS_RELAY_METRICS                                                  \
    (sizeof(ngx_ws_relay_metrics) / sizeof(ngx_ws_relay_metric_t))


static ngx_ws_relay_api_route_t  ngx_ws_relay_api_routes[] = {
    { ngx_string("health"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      ngx_ws_relay_api_health },
    { ngx_string("connections"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      ngx_ws_relay_api_connections },
    { ngx_string("send"), NGX_HTTP_POST,
      ngx_ws_relay_api_send },
    { ngx_string("redis_info"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      ngx_ws_relay_api_redis_info },
    { ngx_string("metrics"), NGX_HTTP_GET|NGX_HTTP_HEAD,
      ngx_ws_relay_api_metrics },
    { ngx_null_string, 0, NULL }
};


static ngx_str_t  ngx_ws_relay_api_json = ngx_string("application/json");
static ngx_str_t  ngx_ws_relay_api_allow = ngx_string("Allow");
static ngx_str_t  ngx_ws_relay_api_text =
    ngx_string("text/plain; version=0.0.4");


char *
ngx_ws_relay_api_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ws_relay_loc_conf_t *wlcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_ws_relay_main_conf_t  *wmcf;

    if (wlcf->api != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_ws_relay_api_routes[i].handler; i++) {
        if (ngx_ws_relay_api_routes[i].name.len == value[1].len
            && ngx_strncmp(ngx_ws_relay_api_routes[i].name.data,
                           value[1].data, value[1].len) == 0)
        {
            wlcf->api = i;

            wmcf = ngx_http_conf_get_module_main_conf(cf,
                                                      ngx_ws_relay_module);
            wmcf->used = 1;

            clcf = ngx_http_conf_get_module_loc_conf(cf,
                                                     ngx_http_core_module);
            clcf->handler = ngx_ws_relay_api_handler;

            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\": use health, connections, send, "
                       "redis_info or metrics", &value[1]);

    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_ws_relay_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  allow;
    ngx_ws_relay_loc_conf_t   *wlcf;
    ngx_ws_relay_api_route_t  *route;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_ws_relay_module);
    route = &ngx_ws_relay_api_routes[wlcf->api];

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_ws_relay_api_preflight(r);
    }

    if (!(r->method & route->methods)) {
        if (route->methods & NGX_HTTP_POST) {
            ngx_str_set(&allow, "POST");

        } else {
            ngx_str_set(&allow, "GET, HEAD");
        }

        if (ngx_ws_relay_http_add_header(r, &ngx_ws_relay_api_allow, &allow)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_ws_relay_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "Method not allowed");
    }

    if (route->methods & NGX_HTTP_POST) {
        return route->handler(r);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return route->handler(r);
}


/*
 * A CORS preflight, answered as the old server's cors() answered it:
 * 204, the methods, and the request headers the browser asked for.
 * Access-Control-Allow-Origin is the configuration's (add_header), so
 * that the operator chooses the origins.
 */

static ngx_int_t
ngx_ws_relay_api_preflight(ngx_http_request_t *r)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    static ngx_str_t  methods = ngx_string("GET,HEAD,PUT,PATCH,POST,DELETE");
    static ngx_str_t  request = ngx_string("Access-Control-Request-Headers");
    static ngx_str_t  allow_methods =
                                ngx_string("Access-Control-Allow-Methods");
    static ngx_str_t  allow_headers =
                                ngx_string("Access-Control-Allow-Headers");
    static ngx_str_t  vary = ngx_string("Vary");

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_ws_relay_http_add_header(r, &allow_methods, &methods)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_ws_relay_http_find_header(r, &request);

    if (h
        && (ngx_ws_relay_http_add_header(r, &allow_headers, &h->value)
            != NGX_OK
            || ngx_ws_relay_http_add_header(r, &vary, &request) != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}


static ngx_int_t
ngx_ws_relay_api_health(ngx_http_request_t *r)
{
    u_char                          iso[sizeof("1970-01-01T00:00:00.000Z")];
    u_char                          master[NGX_SOCKADDR_STRLEN
                                           + NGX_INT_T_LEN + 2];
    json_t                         *json, *workers, *shards;
    ngx_tm_t                        tm;
    ngx_uint_t                      i, connections, degraded;
    ngx_time_t                     *tp;
    ngx_ws_relay_shm_t             *shm;
    ngx_ws_relay_bus_state_e        state;
    ngx_ws_relay_redis_conf_t      *rcf;
    ngx_ws_relay_redis_endpoint_t  *ep;

    shm = ngx_ws_relay_shm(ngx_ws_relay_worker.main_conf);
    rcf = &ngx_ws_relay_worker.main_conf->redis;
    tp = ngx_timeofday();

    ngx_gmtime(tp->sec, &tm);
    ngx_sprintf(iso, "%4d-%02d-%02dT%02d:%02d:%02d.%03dZ%Z",
                tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                (int) tp->msec);

    workers = ngx_ws_relay_api_workers(&connections, &degraded);
    if (workers == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    state = ngx_ws_relay_bus_state();

    json = json_pack("{s:s, s:I, s:s, s:I, s:I, s:o, s:{s:s, s:s}}",
                     "status", degraded ? "degraded" : "ok",
                     "uptime", (json_int_t) (tp->sec - shm->started),
                     "timestamp", iso,
                     "activeConnections", (json_int_t) connections,
                     "maxConnections",
                     (json_int_t) ngx_ws_relay_api_max_connections(),
                     "workers", workers,
                     "redis",
                       "state", degraded ? "degraded"
                                : ngx_ws_relay_bus_state_name(state),
                       "lastError",
                       (char *) ngx_ws_relay_slot->redis_error);

    if (json && rcf->sentinels) {
        /* the master this worker follows */
        ep = rcf->endpoints->elts;
        ngx_sprintf(master, "%V:%i%Z", &ep->host, ep->port);

        (void) json_object_set_new(json_object_get(json, "redis"), "master",
                                   json_string(ep->host.len
                                               ? (char *) master : ""));
    }

    if (json && rcf->cluster) {
        /* the masters of the cluster this worker follows */
        shards = json_array();

        for (i = 0; (ep = ngx_ws_relay_bus_shard(i)); i++) {
            ngx_sprintf(master, "%V:%i%Z", &ep->host, ep->port);
            (void) json_array_append_new(shards,
                                         json_string((char *) master));
        }

        (void) json_object_set_new(json_object_get(json, "redis"), "shards",
                                   shards);
    }

    return ngx_ws_relay_api_reply(r, NGX_HTTP_OK, json);
}


static ngx_int_t
ngx_ws_relay_api_connections(ngx_http_request_t *r)
{
    json_t      *workers;
    ngx_uint_t   connections, degraded;

    workers = ngx_ws_relay_api_workers(&connections, &degraded);
    if (workers == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_ws_relay_api_reply(r, NGX_HTTP_OK,
               json_pack("{s:I, s:I, s:o}",
                         "activeConnections", (json_int_t) connections,
                         "maxConnections",
                         (json_int_t) ngx_ws_relay_api_max_connections(),
                         "workers", workers));
}


/*
 * The live workers' slots as a JSON array; *degraded when Redis is
 * configured and some worker does not have it.
 */

static json_t *
ngx_ws_relay_api_workers(ngx_uint_t *connections, ngx_uint_t *degraded)
{
    json_t               *workers, *worker;
    ngx_uint_t            i;
    ngx_ws_relay_shm_t   *shm;
    ngx_ws_relay_slot_t  *slot;

    *connections = 0;
    *degraded = 0;

    workers = json_array();
    if (workers == NULL) {
        return NULL;
    }

    shm = ngx_ws_relay_shm(ngx_ws_relay_worker.main_conf);

    for (i = 0; i < NGX_WS_RELAY_SLOTS; i++) {
        slot = &shm->slots[i];

        if (!ngx_ws_relay_shm_slot_live(slot)) {
            continue;
        }

        *connections += slot->connections;

        if (ngx_ws_relay_worker.main_conf->redis.enabled
            && slot->redis_state != NGX_WS_RELAY_BUS_UP)
        {
            *degraded = 1;
        }

        worker = json_pack("{s:I, s:I, s:I, s:s}",
                           "pid", (json_int_t) slot->pid,
                           "connections", (json_int_t) slot->connections,
                           "users", (json_int_t) slot->users,
                           "redis",
                           ngx_ws_relay_bus_state_name(slot->redis_state));

        if (json_array_append_new(workers, worker) != 0) {
            json_decref(workers);
            return NULL;
        }
    }

    return workers;
}


static ngx_uint_t
ngx_ws_relay_api_max_connections(void)
{
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    return ngx_ws_relay_worker.main_conf->max_connections
           * (ccf->master ? (ngx_uint_t) ccf->worker_processes : 1);
}


/*
 * POST /api/send-to-user: {"userId":"u1","message":<any>,"type":<any>}
 * sent as application/json (the old server's body parser read no other
 * type; a browser cannot send it cross-origin without a preflight).
 */

static ngx_int_t
ngx_ws_relay_api_send(ngx_http_request_t *r)
{
    ngx_int_t         rc;
    ngx_str_t         type;
    ngx_table_elt_t  *h;

    h = r->headers_in.content_type;

    if (h) {
        type = h->value;

        if (ngx_strlchr(type.data, type.data + type.len, ';')) {
            type.len = ngx_strlchr(type.data, type.data + type.len, ';')
                       - type.data;
        }

        while (type.len && (type.data[type.len - 1] == ' '
                            || type.data[type.len - 1] == '\t'))
        {
            type.len--;
        }
    }

    if (h == NULL
        || type.len != sizeof("application/json") - 1
        || ngx_strncasecmp(type.data, (u_char *) "application/json",
                           type.len)
           != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ws relay: send-to-user body is not sent as "
                      "application/json");

        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_ws_relay_api_error(r, NGX_HTTP_BAD_REQUEST,
                                      "Request body must be JSON "
                                      "(Content-Type: application/json)");
    }

    rc = ngx_http_read_client_request_body(r, ngx_ws_relay_api_send_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_ws_relay_api_send_body(ngx_http_request_t *r)
{
    u_char                     *p, *start;
    size_t                      size;
    ngx_int_t                   rc;
    ngx_str_t                   body, user_id, text;
    const char                 *error;
    ngx_ws_relay_delivery_t    *d;
    ngx_ws_relay_loc_conf_t    *wlcf;
    ngx_ws_relay_json_value_t  *user, *message, *type;
    ngx_ws_relay_json_field_t   f[3] = {
                                    { ngx_string("userId"), { 0 } },
                                    { ngx_string("message"), { 0 } },
                                    { ngx_string("type"), { 0 } }
                                };

    if (ngx_ws_relay_api_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_ws_relay_json_read(body.data, body.len, f, 3, &error);

    user = &f[0].value;
    message = &f[1].value;
    type = &f[2].value;

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ws relay: send-to-user body is not JSON: %s", error);
        error = "Request body must be JSON";

    } else if (rc == NGX_DECLINED) {
        error = "Request body must be a JSON object";

    } else if (ngx_ws_relay_json_falsy(user)) {
        error = "Missing userId";

    } else if (user->type != NGX_WS_RELAY_JSON_STRING) {
        error = "userId must be a string";

    } else if (ngx_ws_relay_json_falsy(message)) {
        error = "Missing message";

    } else {
        error = NULL;
    }

    if (error == NULL) {
        /* decoding never makes a string longer than its JSON text */
        user_id.data = ngx_pnalloc(r->pool, user->text.len);
        if (user_id.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        user_id.len = ngx_ws_relay_json_unescape(user_id.data, user);

        if (user_id.len > NGX_WS_RELAY_MAX_USER_ID) {
            error = "userId is too long";
        }
    }

    if (error) {
        ngx_http_finalize_request(r,
            ngx_ws_relay_api_error(r, NGX_HTTP_BAD_REQUEST, error));
        return;
    }

    size = sizeof("{\"type\":\"notification\",\"message\":,"
                  "\"sender\":\"system\",\"timestamp\":}")
           + type->text.len + message->text.len + NGX_INT64_LEN;

    start = ngx_pnalloc(r->pool, size);
    d = ngx_ws_relay_delivery_create(ngx_ws_relay_api_delivered, r, &user_id,
                                     r->connection->log);

    wlcf = ngx_http_get_module_loc_conf(r, ngx_ws_relay_module);

    if (d && wlcf->history.size) {
        d->history = &wlcf->history;
    }

    if (start == NULL || d == NULL) {
        if (d) {
            ngx_ws_relay_delivery_free(d);
        }

        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* type || "notification", as the old server wrote it */

    p = ngx_cpymem(start, "{\"type\":", sizeof("{\"type\":") - 1);

    if (ngx_ws_relay_json_falsy(type)) {
        p = ngx_cpymem(p, "\"notification\"", sizeof("\"notification\"") - 1);

    } else {
        p = ngx_ws_relay_json_copy(p, &type->text);
    }

    p = ngx_cpymem(p, ",\"message\":", sizeof(",\"message\":") - 1);
    p = ngx_ws_relay_json_copy(p, &message->text);
    p = ngx_sprintf(p, ",\"sender\":\"system\",\"timestamp\":%uL}",
                    ngx_ws_relay_now_ms());

    text.data = start;
    text.len = p - start;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ws relay: api send of %uz bytes", text.len);

    ngx_ws_relay_delivery_start(d, &text);
}


/* the request body in one piece, from memory or from its temp file */

static ngx_int_t
ngx_ws_relay_api_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        if (b->last != b->pos) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    body->len = p - body->data;

    return NGX_OK;
}


/*
 * {"success":<delivered > 0>,"delivered":n,"userId":"u1"}, with
 * "queued" and "id" after "delivered" for a location with history
 */

static void
ngx_ws_relay_api_delivered(ngx_ws_relay_delivery_t *d)
{
    u_char              *p, *start;
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = d->data;

    start = ngx_pnalloc(r->pool, sizeof("{\"success\":false,\"delivered\":,"
                                        "\"userId\":}\n")
                                 + NGX_INT_T_LEN
                                 + NGX_WS_RELAY_DELIVERY_QUEUED_LEN
                                 + NGX_WS_RELAY_JSON_STR_LEN(d->user_id.len));

    if (start == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        p = ngx_sprintf(start, "{\"success\":%s,\"delivered\":%ui",
                        d->delivered ? "true" : "false", d->delivered);

        if (d->history) {
            p = ngx_ws_relay_delivery_write_queued(p, d);
        }

        p = ngx_cpymem(p, ",\"userId\":", sizeof(",\"userId\":") - 1);
        p = ngx_ws_relay_json_write_string(p, &d->user_id);
        *p++ = '}';
        *p++ = '\n';

        rc = ngx_ws_relay_http_send(r, NGX_HTTP_OK, &ngx_ws_relay_api_json,
                                    start, p - start);
    }

    ngx_ws_relay_delivery_free(d);

    ngx_ws_relay_api_finish(r, rc);
}


/*
 * Presence: {"<node>": ["user", ...]}, every worker of the cluster from
 * Redis, or this worker without Redis.  Node ids and users that are not
 * UTF-8 cannot be JSON strings: they are left out.
 */

static ngx_int_t
ngx_ws_relay_api_redis_info(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_array_t                    nodes;
    ngx_ws_relay_user_t           *user;
    ngx_queue_t                   *q, *users;
    ngx_str_t                     *name;
    ngx_ws_relay_presence_node_t  *node;

    if (ngx_ws_relay_bus_state() != NGX_WS_RELAY_BUS_OFF) {
        rc = ngx_ws_relay_presence_query(ngx_ws_relay_api_presence, r);

        if (rc != NGX_OK) {
            return ngx_ws_relay_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Redis is unavailable");
        }

        r->main->count++;

        return NGX_DONE;
    }

    if (ngx_array_init(&nodes, r->pool, 1,
                       sizeof(ngx_ws_relay_presence_node_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    node = ngx_array_push(&nodes);
    if (node == NULL
        || ngx_array_init(&node->users, r->pool, 8, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    node->node = ngx_ws_relay_worker.node_id;
    users = ngx_ws_relay_registry_users();

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

        name = ngx_array_push(&node->users);
        if (name == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *name = user->sn.str;
    }

    return ngx_ws_relay_api_presence_reply(r, &nodes);
}


static void
ngx_ws_relay_api_presence(ngx_array_t *nodes, void *data)
{
    ngx_http_request_t *r = data;

    if (nodes == NULL) {
        ngx_ws_relay_api_finish(r,
            ngx_ws_relay_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "Redis is unavailable"));
        return;
    }

    ngx_ws_relay_api_finish(r, ngx_ws_relay_api_presence_reply(r, nodes));
}


/*
 * The old API keyed processes by pid: node ids are "<host>-<pid>-<start>",
 * the pid sits between the last two dashes.
 */

static ngx_int_t
ngx_ws_relay_api_node_pid(ngx_str_t *node, char *pid)
{
    u_char  *p, *dash;

    p = node->data + node->len;
    dash = NULL;

    while (p > node->data) {
        if (*--p == '-') {
            if (dash) {
                break;
            }

            dash = p;
        }
    }

    if (dash == NULL || *p != '-'
        || (size_t) (dash - p - 1) > NGX_INT_T_LEN)
    {
        return NGX_DECLINED;
    }

    ngx_cpystrn((u_char *) pid, p + 1, dash - p);

    return NGX_OK;
}


static ngx_int_t
ngx_ws_relay_api_presence_reply(ngx_http_request_t *r, ngx_array_t *nodes)
{
    json_t                        *all, *user_processes, *process_users,
                                  *users, *list, *name, *workers;
    size_t                         j;
    ngx_str_t                     *user;
    ngx_uint_t                     i, k, connections, degraded;
    ngx_ws_relay_presence_node_t  *node;
    char                           pid[NGX_INT_T_LEN + 1];

    all = json_object();
    user_processes = json_object();
    process_users = json_object();

    if (all == NULL || user_processes == NULL || process_users == NULL) {
        goto failed;
    }

    node = nodes->elts;

    for (i = 0; i < nodes->nelts; i++) {

        users = json_array();
        if (users == NULL) {
            goto failed;
        }

        user = node[i].users.elts;

        for (k = 0; k < node[i].users.nelts; k++) {
            name = ngx_ws_relay_json_string(&user[k]);

            if (name && json_array_append_new(users, name) != 0) {
                json_decref(users);
                goto failed;
            }
        }

        /* refused, and users released, when the name is not UTF-8 */
        if (json_object_setn_new(all, (char *) node[i].node.data,
                                 node[i].node.len, users)
            != 0)
        {
            continue;
        }

        if (ngx_ws_relay_api_node_pid(&node[i].node, pid) != NGX_OK) {
            continue;
        }

        list = json_object_get(process_users, pid);

        if (list == NULL) {
            list = json_array();

            if (json_object_set_new(process_users, pid, list) != 0) {
                goto failed;
            }
        }

        json_array_foreach(users, j, name) {
            json_array_append(list, name);

            if (json_object_getn(user_processes, json_string_value(name),
                                 json_string_length(name))
                == NULL)
            {
                json_object_setn_new(user_processes, json_string_value(name),
                                     json_string_length(name),
                                     json_string(pid));
            }
        }
    }

    workers = ngx_ws_relay_api_workers(&connections, &degraded);

    ngx_sprintf((u_char *) pid, "%P%Z", ngx_pid);

    return ngx_ws_relay_api_reply(r, NGX_HTTP_OK,
               json_pack("{s:s, s:o, s:o, s:I, s:o, s:o, s:s}",
                         "processId", pid,
                         "userProcesses", user_processes,
                         "processUsers", process_users,
                         "localConnections", (json_int_t) connections,
                         "nodes", all,
                         "workers", workers ? workers : json_array(),
                         "redis", ngx_ws_relay_bus_state_name(
                                                ngx_ws_relay_bus_state())));

failed:

    json_decref(all);
    json_decref(user_processes);
    json_decref(process_users);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * Prometheus text: per metric its HELP and TYPE lines, then one sample
 * per live worker, written by the metric's own writer.
 */

static ngx_int_t
ngx_ws_relay_api_metrics(ngx_http_request_t *r)
{
    u_char                       *buf, *p, *end;
    size_t                        size;
    ngx_uint_t                    i, k, n;
    ngx_ws_relay_shm_t           *shm;
    ngx_ws_relay_slot_t          *live[NGX_WS_RELAY_SLOTS];
    const ngx_ws_relay_metric_t  *m;

    shm = ngx_ws_relay_shm(ngx_ws_relay_worker.main_conf);

    n = 0;

    for (i = 0; i < NGX_WS_RELAY_SLOTS; i++) {
        if (ngx_ws_relay_shm_slot_live(&shm->slots[i])) {
            live[n++] = &shm->slots[i];
        }
    }

    /* HELP and TYPE lines, and the samples of every worker */
    size = NGX_WS_RELAY_METRICS * 256
           + n * (NGX_WS_RELAY_METRICS + NGX_WS_RELAY_CLOSE_CODES) * 128;

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf;
    end = buf + size;

    for (k = 0; k < NGX_WS_RELAY_METRICS; k++) {
        m = &ngx_ws_relay_metrics[k];

        p = ngx_slprintf(p, end, "# HELP %s %s\n# TYPE %s %s\n",
                         m->name, m->help, m->name, m->type);

        for (i = 0; i < n; i++) {
            p = m->write(p, end, m, live[i]);
        }
    }

    return ngx_ws_relay_http_send(r, NGX_HTTP_OK, &ngx_ws_relay_api_text,
                                  buf, p - buf);
}


static u_char *
ngx_ws_relay_api_metric_value(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot)
{
    return ngx_slprintf(p, end, "%s{worker=\"%uA\"} %uA\n", m->name,
                        slot->pid,
                        *(ngx_atomic_t *) ((u_char *) slot + m->offset));
}


static u_char *
ngx_ws_relay_api_metric_redis_up(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot)
{
    return ngx_slprintf(p, end, "%s{worker=\"%uA\"} %d\n", m->name,
                        slot->pid, slot->redis_state == NGX_WS_RELAY_BUS_UP);
}


static u_char *
ngx_ws_relay_api_metric_rtt(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot)
{
    return ngx_slprintf(p, end, "%s{worker=\"%uA\"} %uA.%06uA\n", m->name,
                        slot->pid, slot->redis_rtt_us / 1000000,
                        slot->redis_rtt_us % 1000000);
}


static u_char *
ngx_ws_relay_api_metric_closes(u_char *p, u_char *end,
    const ngx_ws_relay_metric_t *m, ngx_ws_relay_slot_t *slot)
{
    ngx_uint_t  k;

    for (k = 0; k < NGX_WS_RELAY_CLOSE_CODES; k++) {
        if (slot->closes[k] == 0) {
            continue;
        }

        if (k == NGX_WS_RELAY_CLOSE_CODES - 1) {
            p = ngx_slprintf(p, end, "%s{worker=\"%uA\",code=\"other\"} "
                             "%uA\n", m->name, slot->pid, slot->closes[k]);

        } else {
            p = ngx_slprintf(p, end, "%s{worker=\"%uA\",code=\"%ui\"} "
                             "%uA\n", m->name, slot->pid, 1000 + k,
                             slot->closes[k]);
        }
    }

    return p;
}


/* takes the reference to json */

static ngx_int_t
ngx_ws_relay_api_reply(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    char       *text;
    u_char     *p;
    size_t      len;

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text = json_dumps(json, JSON_COMPACT|JSON_PRESERVE_ORDER);
    json_decref(json);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(text);

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, text, len);
    p[len] = '\n';
    free(text);

    return ngx_ws_relay_http_send(r, status, &ngx_ws_relay_api_json, p,
                                   len + 1);
}


static ngx_int_t
ngx_ws_relay_api_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *text)
{
    return ngx_ws_relay_api_reply(r, status,
                                  json_pack("{s:s}", "error", text));
}


/* a whole response from memory: JSON, metrics, handshake refusals */

ngx_int_t
ngx_ws_relay_http_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_ws_relay_http_add_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *key;
    h->value = *value;

    return NGX_OK;
}


/* a request header that nginx keeps no pointer to, by name */

ngx_table_elt_t *
ngx_ws_relay_http_find_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/* ends a request that waited for Redis, outside of its own handlers */

static void
ngx_ws_relay_api_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_deflate.h"
#include "ngx_ws_relay_registry.h"
#include <ngx_sha1.h>


#define NGX_WS_RELAY_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


static ngx_int_t ngx_ws_relay_handshake_check(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_ws_relay_handshake_identity(ngx_http_request_t *r,
    ngx_ws_relay_loc_conf_t *wlcf, ngx_str_t *user_id);
static ngx_int_t ngx_ws_relay_handshake_accept(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *user_id);
static ngx_int_t ngx_ws_relay_handshake_reject(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *line, const char *text);
static ngx_uint_t ngx_ws_relay_has_token(ngx_table_elt_t *h,
    ngx_str_t *token);


static ngx_str_t  ngx_ws_relay_websocket = ngx_string("websocket");
static ngx_str_t  ngx_ws_relay_upgrade = ngx_string("upgrade");
static ngx_str_t  ngx_ws_relay_upgrade_header = ngx_string("Upgrade");
static ngx_str_t  ngx_ws_relay_connection_header = ngx_string("Connection");
static ngx_str_t  ngx_ws_relay_key_header = ngx_string("Sec-WebSocket-Key");
static ngx_str_t  ngx_ws_relay_version_header =
    ngx_string("Sec-WebSocket-Version");
static ngx_str_t  ngx_ws_relay_accept_header =
    ngx_string("Sec-WebSocket-Accept");
static ngx_str_t  ngx_ws_relay_allow_header = ngx_string("Allow");
static ngx_str_t  ngx_ws_relay_get = ngx_string("GET");
static ngx_str_t  ngx_ws_relay_extensions_header =
    ngx_string("Sec-WebSocket-Extensions");
static ngx_str_t  ngx_ws_relay_version = ngx_string("13");
static ngx_str_t  ngx_ws_relay_101 = ngx_string("101 Switching Protocols");
static ngx_str_t  ngx_ws_relay_426 = ngx_string("426 Upgrade Required");


/*
 * The content handler of a "ws_relay" location: checks the upgrade
 * request (RFC 6455, 4.2.1), answers 101 and hands the connection over.
 */

ngx_int_t
ngx_ws_relay_handshake_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 key, user_id;
    ngx_ws_relay_loc_conf_t  *wlcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    /* each check answers the request itself, or declines to */

    rc = ngx_ws_relay_handshake_check(r, &key);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    wlcf = ngx_http_get_module_loc_conf(r, ngx_ws_relay_module);

    rc = ngx_ws_relay_handshake_identity(r, wlcf, &user_id);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_ws_relay_handshake_accept(r, &key, &user_id);
}


/* NGX_DECLINED with the client's key, or the response that refuses it */

static ngx_int_t
ngx_ws_relay_handshake_check(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char            buf[24];
    ngx_str_t         decoded;
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET) {
        if (ngx_ws_relay_http_add_header(r, &ngx_ws_relay_allow_header,
                                    &ngx_ws_relay_get)
            == NGX_ERROR)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    /* nginx 1.22 does not keep r->headers_in.connection */
    h = ngx_ws_relay_http_find_header(r, &ngx_ws_relay_connection_header);

    if (r->headers_in.upgrade == NULL
        || !ngx_ws_relay_has_token(r->headers_in.upgrade,
                                   &ngx_ws_relay_websocket)
        || h == NULL
        || !ngx_ws_relay_has_token(h, &ngx_ws_relay_upgrade))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ws relay: request without WebSocket upgrade");

        if (ngx_ws_relay_http_add_header(r, &ngx_ws_relay_upgrade_header,
                                    &ngx_ws_relay_websocket)
            == NGX_ERROR)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_ws_relay_handshake_reject(r, 426, &ngx_ws_relay_426,
                                             "This location accepts "
                                             "WebSocket connections only.\n");
    }

    if (r->http_version != NGX_HTTP_VERSION_11) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ws relay: WebSocket upgrade needs HTTP/1.1");

        return ngx_ws_relay_handshake_reject(r, NGX_HTTP_BAD_REQUEST, NULL,
                                             "WebSocket upgrade needs "
                                             "HTTP/1.1.\n");
    }

    h = ngx_ws_relay_http_find_header(r, &ngx_ws_relay_version_header);

    if (h == NULL
        || h->value.len != ngx_ws_relay_version.len
        || ngx_strncmp(h->value.data, ngx_ws_relay_version.data,
                       ngx_ws_relay_version.len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ws relay: unsupported or missing "
                      "Sec-WebSocket-Version");

        if (ngx_ws_relay_http_add_header(r, &ngx_ws_relay_version_header,
                                    &ngx_ws_relay_version)
            == NGX_ERROR)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_ws_relay_handshake_reject(r, 426, &ngx_ws_relay_426,
                                             "Only WebSocket version 13 is "
                                             "supported.\n");
    }

    /* the key must be 16 bytes, base64-encoded */

    h = ngx_ws_relay_http_find_header(r, &ngx_ws_relay_key_header);

    if (h != NULL) {
        *key = h->value;
        decoded.data = buf;
    }

    if (h == NULL
        || key->len != 24
        || ngx_decode_base64(&decoded, key) != NGX_OK
        || decoded.len != 16)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ws relay: missing or invalid Sec-WebSocket-Key");

        return ngx_ws_relay_handshake_reject(r, NGX_HTTP_BAD_REQUEST, NULL,
                                             "Missing or invalid "
                                             "Sec-WebSocket-Key.\n");
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ws relay: upgrade request with a body");

        return ngx_ws_relay_handshake_reject(r, NGX_HTTP_BAD_REQUEST, NULL,
                                             "A WebSocket upgrade request "
                                             "has no body.\n");
    }

    return NGX_DECLINED;
}


/*
 * The identity that ws_relay_user_id gives the connection (NGX_DECLINED:
 * nothing to refuse).  It fails closed: an identity that cannot be a user
 * id (too long, not UTF-8) is refused, and so is none at all unless the
 * directive says "optional".
 */

static ngx_int_t
ngx_ws_relay_handshake_identity(ngx_http_request_t *r,
    ngx_ws_relay_loc_conf_t *wlcf, ngx_str_t *user_id)
{
    uint32_t     state;
    const char  *refused;

    ngx_str_null(user_id);

    if (wlcf->user_id == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_complex_value(r, wlcf->user_id, user_id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    state = 0;

    if (user_id->len == 0) {
        if (wlcf->user_id_optional) {
            return NGX_DECLINED;
        }

        refused = "no identity from ws_relay_user_id";

    } else if (user_id->len > NGX_WS_RELAY_MAX_USER_ID) {
        refused = "identity from ws_relay_user_id longer than 256 bytes";

    } else if (ngx_ws_relay_utf8_check(&state, user_id->data, user_id->len)
               != NGX_OK
               || !ngx_ws_relay_utf8_complete(state))
    {
        refused = "identity from ws_relay_user_id that is not UTF-8";

    } else {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ws relay: handshake refused: %s", refused);

    return ngx_ws_relay_handshake_reject(r, NGX_HTTP_FORBIDDEN, NULL,
                                         "No valid identity for a "
                                         "WebSocket connection.\n");
}


/* the 101, with Sec-WebSocket-Accept and the extensions agreed on */

static ngx_int_t
ngx_ws_relay_handshake_accept(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *user_id)
{
    u_char                         accept[28], digest[20];
    ngx_int_t                      rc;
    ngx_str_t                      src, dst;
    ngx_sha1_t                     sha1;
    ngx_ws_relay_loc_conf_t       *wlcf;
    ngx_ws_relay_deflate_offer_t   offer;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_ws_relay_module);

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_update(&sha1, NGX_WS_RELAY_GUID, sizeof(NGX_WS_RELAY_GUID) - 1);
    ngx_sha1_final(digest, &sha1);

    src.data = digest;
    src.len = sizeof(digest);
    dst.data = accept;
    ngx_encode_base64(&dst, &src);

    if (ngx_ws_relay_http_add_header(r, &ngx_ws_relay_upgrade_header,
                                &ngx_ws_relay_websocket)
        == NGX_ERROR
        || ngx_ws_relay_http_add_header(r, &ngx_ws_relay_accept_header, &dst)
           == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    offer.server_window_bits = 0;

    if (wlcf->deflate) {
        rc = ngx_ws_relay_deflate_negotiate(r, &offer);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_OK
            && ngx_ws_relay_http_add_header(r, &ngx_ws_relay_extensions_header,
                                       &offer.response)
               == NGX_ERROR)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    r->headers_out.status_line = ngx_ws_relay_101;
    r->headers_out.content_length_n = -1;
    r->header_only = 1;
    r->keepalive = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ws relay: 101 sent, deflate window %ui",
                   offer.server_window_bits);

    if (ngx_ws_relay_conn_start(r, wlcf, offer.server_window_bits, user_id)
        != NGX_DONE)
    {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_ws_relay_handshake_reject(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *line, const char *text)
{
    static ngx_str_t  type = ngx_string("text/plain");

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (line) {
        r->headers_out.status_line = *line;
    }

    return ngx_ws_relay_http_send(r, status, &type, (u_char *) text,
                                  ngx_strlen(text));
}


/* a comma-separated header value holds the token, in any case */

static ngx_uint_t
ngx_ws_relay_has_token(ngx_table_elt_t *h, ngx_str_t *token)
{
    u_char  *p, *end, *start, *last;

    p = h->value.data;
    end = p + h->value.len;

    while (p < end) {

        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < end && *p != ',') {
            p++;
        }

        last = p;

        while (last > start && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        if ((size_t) (last - start) == token->len
            && ngx_strncasecmp(start, token->data, token->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}

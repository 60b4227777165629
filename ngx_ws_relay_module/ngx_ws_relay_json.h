
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_JSON_H_INCLUDED_
#define _NGX_WS_RELAY_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


/*
 * JSON for the router, deliveries and the API: jansson for whatever a
 * client may send, a reader and a writer of its own for the usual flat
 * messages, and one scratch buffer per worker for the text that goes out.
 */


/* nesting of client JSON beyond this is refused */
#define NGX_WS_RELAY_JSON_MAX_DEPTH  32

/* members of a flat object, at most */
#define NGX_WS_RELAY_JSON_FLAT_MAX   8


/* a member of a flat object: a name and a string value, as they are */
typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  value;
} ngx_ws_relay_json_member_t;


/*
 * Reads {"name":"value",...}: at most NGX_WS_RELAY_JSON_FLAT_MAX members,
 * every value a string, no escapes, no control characters, UTF-8, no
 * duplicate names.  Such a text means to jansson exactly what the members
 * hold, quotes removed.  Anything else is NGX_DECLINED (not an error: the
 * caller asks ngx_ws_relay_json_load()).
 */
ngx_int_t ngx_ws_relay_json_read_flat(u_char *data, size_t len,
    ngx_ws_relay_json_member_t *members, ngx_uint_t *n);
ngx_str_t *ngx_ws_relay_json_flat_get(ngx_ws_relay_json_member_t *members,
    ngx_uint_t n, const char *name);

/*
 * A client's JSON text: NULL, with error->text saying why, when it is not
 * JSON or nests deeper than NGX_WS_RELAY_JSON_MAX_DEPTH.  Duplicate names
 * are refused.
 */
json_t *ngx_ws_relay_json_load(u_char *data, size_t len, size_t flags,
    json_error_t *error);

/* what JavaScript calls falsy: missing, null, false, "", 0 */
ngx_uint_t ngx_ws_relay_json_falsy(json_t *value);

json_t *ngx_ws_relay_json_string(ngx_str_t *s);

/*
 * Writes s as a JSON string, as jansson writes it: '"', '\\' and control
 * characters escaped, the rest as it is.  s must be UTF-8; the output
 * takes at most NGX_WS_RELAY_JSON_STR_LEN(s->len) bytes.
 */
u_char *ngx_ws_relay_json_write_string(u_char *p, ngx_str_t *s);
#define NGX_WS_RELAY_JSON_STR_LEN(len)  (6 * (len) + 2)

/*
 * The worker's scratch buffer with room for size bytes; what it holds
 * lives until the next call of this or ngx_ws_relay_json_dump().
 */
u_char *ngx_ws_relay_json_scratch(size_t size);

/* json as compact text, in the scratch buffer */
ngx_int_t ngx_ws_relay_json_dump(json_t *json, ngx_str_t *out);


#endif /* _NGX_WS_RELAY_JSON_H_INCLUDED_ */


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_JSON_H_INCLUDED_
#define _NGX_WS_RELAY_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


/*
 * JSON for the router, deliveries and the API.  What clients send is read
 * by a reader of our own that accepts what JavaScript's JSON.parse()
 * accepts (the old server's parser): it checks the whole text in one pass
 * without allocating, and keeps, of the top-level object, the members
 * the caller asks for, as their text.  Values go out as that text (white
 * space dropped): numbers keep their digits, nothing is re-serialised.
 * Strings are decoded only where their value is needed (user ids), into
 * UTF-8, or WTF-8 for the lone surrogates that JSON.parse() lets through;
 * the writer escapes them back.  jansson builds the API's own replies.
 */


/* nesting of client JSON beyond this is refused */
#define NGX_WS_RELAY_JSON_MAX_DEPTH  1000


typedef enum {
    NGX_WS_RELAY_JSON_NONE = 0,
    NGX_WS_RELAY_JSON_NULL,
    NGX_WS_RELAY_JSON_FALSE,
    NGX_WS_RELAY_JSON_TRUE,
    NGX_WS_RELAY_JSON_NUMBER,
    NGX_WS_RELAY_JSON_STRING,
    NGX_WS_RELAY_JSON_ARRAY,
    NGX_WS_RELAY_JSON_OBJECT
} ngx_ws_relay_json_type_e;


/* a value as it came: NONE when the member was not there */
typedef struct {
    ngx_ws_relay_json_type_e   type;
    /* the whole value's text; a string's with its quotes */
    ngx_str_t                  text;
    /* a string with escapes: ngx_ws_relay_json_unescape() before use */
    unsigned                   escaped:1;
} ngx_ws_relay_json_value_t;


/* a member the caller wants: found by its (unescaped) name, 32 bytes at most */
typedef struct {
    ngx_str_t                  name;
    ngx_ws_relay_json_value_t  value;
} ngx_ws_relay_json_field_t;


/*
 * Reads a JSON text; NGX_OK: a valid object, and each field holds its
 * member's value (the last one, as in JSON.parse(), when the name comes
 * more than once); NGX_DECLINED: valid JSON, but not an object; NGX_ERROR:
 * not JSON, *error says why (never with the client's bytes).
 */
ngx_int_t ngx_ws_relay_json_read(u_char *data, size_t len,
    ngx_ws_relay_json_field_t *fields, ngx_uint_t n, const char **error);

/* what JavaScript calls falsy: missing, null, false, "", 0 */
ngx_uint_t ngx_ws_relay_json_falsy(ngx_ws_relay_json_value_t *v);

/*
 * The value of a string, decoded into dst (room for v->text.len bytes is
 * enough); returns its length.
 */
size_t ngx_ws_relay_json_unescape(u_char *dst, ngx_ws_relay_json_value_t *v);

/* the value's text without its insignificant white space */
u_char *ngx_ws_relay_json_copy(u_char *p, ngx_str_t *text);

/*
 * What JavaScript's String(value) makes of it (as a template literal
 * shows it): takes at most NGX_WS_RELAY_JSON_JS_LEN(v->text.len) bytes.
 */
u_char *ngx_ws_relay_json_js_string(u_char *p, ngx_ws_relay_json_value_t *v);
#define NGX_WS_RELAY_JSON_JS_LEN(len)  (8 * (len) + 32)

/*
 * Writes s as a JSON string, as JSON.stringify() does: '"', '\\' and
 * control characters escaped, and the lone surrogates of WTF-8 written as
 * \u escapes; the rest as it is.  Takes at most
 * NGX_WS_RELAY_JSON_STR_LEN(s->len) bytes.
 */
u_char *ngx_ws_relay_json_write_string(u_char *p, ngx_str_t *s);
#define NGX_WS_RELAY_JSON_STR_LEN(len)  (6 * (len) + 2)

/* true when s is UTF-8 or WTF-8: text that a JSON string can carry */
ngx_uint_t ngx_ws_relay_json_wtf8(ngx_str_t *s);

json_t *ngx_ws_relay_json_string(ngx_str_t *s);

/*
 * The worker's scratch buffer with room for size bytes; what it holds
 * lives until the next call of this or ngx_ws_relay_json_dump().
 */
u_char *ngx_ws_relay_json_scratch(size_t size);

/* json as compact text, in the scratch buffer */
ngx_int_t ngx_ws_relay_json_dump(json_t *json, ngx_str_t *out);


#endif /* _NGX_WS_RELAY_JSON_H_INCLUDED_ */

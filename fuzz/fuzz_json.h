
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * JSON as JavaScript's JSON.parse() reads it, for the oracles of the json
 * and router targets: jansson reads a copy of the text in which what
 * JSON.parse() takes and jansson does not is replaced by something of the
 * same length that jansson takes and that stands for it:
 *
 *   - a lone surrogate escape, \uD800-\uDFFF not in a pair, by the
 *     escape of U+E000 + (its code unit - 0xD800): U+E000-U+E7FF, its
 *     "image";
 *   - \u0000 in a member name (jansson refuses NUL in keys, JSON_ALLOW_NUL
 *     or not) by \uE800;
 *   - a number too large for a double (JSON.parse() makes it Infinity,
 *     jansson refuses it) by the marker 7e-99 (7e-0..099 as long as it).
 *
 * Each replacement is a valid token of the same class as the one it
 * replaces, so what jansson accepts of the copy is what JSON.parse()
 * accepts of the text.  A NUL byte anywhere is no JSON: jansson's stream
 * takes one that follows a number or a literal for the end of the buffer
 * ("0\0" would pass), so it is not asked.  Strings of the module's WTF-8
 * compare with jansson's strings through fuzz_image(), the same
 * mapping.  The images are ambiguous when the text holds private use
 * characters of that range (collide_chars) or the number 7e-99 itself
 * (collide_marker): the oracles leave out what could be confused then.
 *
 * jansson reads with JSON_DECODE_ANY, JSON_ALLOW_NUL and
 * JSON_DECODE_INT_AS_REAL (JavaScript has doubles only; without it jansson
 * refuses integers beyond 64 bits), and keeps the last of duplicate names
 * as JSON.parse() does.
 *
 * The same scan finds the members of a top-level object, as their text:
 * which member a name finds, and what its text is, comes from there.
 */


#ifndef _FUZZ_JSON_H_INCLUDED_
#define _FUZZ_JSON_H_INCLUDED_


#include "fuzz.h"
#include "ngx_ws_relay_json.h"


#define FUZZ_JSON_FLAGS    (JSON_DECODE_ANY|JSON_ALLOW_NUL                   \
                            |JSON_DECODE_INT_AS_REAL)

/* what stands for a number beyond a double */
#define FUZZ_JSON_MARKER   7e-99

/* the longest name ngx_ws_relay_json_read() is asked for ("short") */
#define FUZZ_JSON_NAME_MAX 32

#define FUZZ_JSON_ANY_KEY  ((size_t) -1)



typedef struct {
    /* the name with its quotes, and the value, in the text */
    size_t          key;
    size_t          key_len;
    size_t          value;
    size_t          value_len;
    /* the name as jansson decodes it from the copy */
    json_t         *name;
} fuzz_member_t;


typedef struct {
    const u_char   *text;
    size_t          len;
    u_char         *patched;
    ngx_uint_t      surrogates;
    ngx_uint_t      nul_keys;
    ngx_uint_t      overflows;
    ngx_uint_t      collide_chars;
    ngx_uint_t      collide_marker;
    /* the text starts with '{': its members */
    ngx_uint_t      object;
    fuzz_member_t  *members;
    ngx_uint_t      nmembers;
    /* jansson's value of the copy; NULL: not JSON */
    json_t         *json;
} fuzz_doc_t;


typedef struct {
    u_char         *data;
    size_t          len;
    size_t          size;
} fuzz_buf_t;


void fuzz_doc_read(fuzz_doc_t *doc, const u_char *text, size_t len);
void fuzz_doc_free(fuzz_doc_t *doc);

/* JSON within NGX_WS_RELAY_JSON_MAX_DEPTH as the module counts it */
ngx_uint_t fuzz_doc_fits(fuzz_doc_t *doc);

/*
 * The member that a name (of WTF-8) finds: the last one of that name
 * whose text between its quotes is at most max_key bytes (all:
 * FUZZ_JSON_ANY_KEY); NULL: none.
 */
fuzz_member_t *fuzz_doc_member(fuzz_doc_t *doc, const u_char *name,
    size_t len, size_t max_key);

/* the member's value, read by jansson from the copy (a new reference) */
json_t *fuzz_doc_value(fuzz_doc_t *doc, fuzz_member_t *m);

/*
 * WTF-8 as jansson sees it in the copy: a lone surrogate as its image, and
 * in a name NUL as U+E800; dst has room for 3 * len bytes.
 */
size_t fuzz_image(u_char *dst, const u_char *s, size_t len, ngx_uint_t key);

/* the other way, for a name jansson decoded; 0: none to be made */
ngx_uint_t fuzz_unimage_key(ngx_str_t *dst, json_t *name);

/* json is a string of the image of the WTF-8 s */
ngx_uint_t fuzz_json_is_wtf8(json_t *json, const u_char *s, size_t len);

/* the text without white space outside strings; dst has room for len */
size_t fuzz_compact(u_char *dst, const u_char *s, size_t len);

/* JavaScript: !value (NULL: undefined) */
ngx_uint_t fuzz_js_falsy(json_t *json);

/* JavaScript: String(value), its strings as images (NULL: undefined) */
void fuzz_js_string(fuzz_buf_t *b, json_t *json);

/* ECMAScript's Number::toString() */
void fuzz_js_number(fuzz_buf_t *b, double d);

/* its layout of k digits, the value being 0.digits * 10^n */
void fuzz_js_layout(fuzz_buf_t *b, const char *digits, int k, int n);

void fuzz_buf_add(fuzz_buf_t *b, const void *data, size_t len);
void fuzz_buf_free(fuzz_buf_t *b);

/* a copy in a heap block of exactly len bytes: ASan sees past its end */
u_char *fuzz_dup(const u_char *data, size_t len);


#endif /* _FUZZ_JSON_H_INCLUDED_ */


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: ngx_ws_relay_json.c against jansson, on the same
 * bytes.  Input: a byte of flags for the loaders (bit 0: JSON_DECODE_ANY,
 * bit 1: JSON_ALLOW_NUL, bit 2: JSON_DECODE_INT_AS_REAL), then the text.
 *
 * - ngx_ws_relay_json_read_flat(): whatever it accepts, jansson accepts
 *   too (json_loadb() with JSON_REJECT_DUPLICATES) as an object with
 *   exactly those members, each a string of exactly those bytes, and
 *   _flat_get() finds each member by its name.  Conversely, an object
 *   that jansson reads whose values are all strings, with no escape (no
 *   backslash in the text: raw control characters jansson refuses
 *   itself), no duplicate name and at most NGX_WS_RELAY_JSON_FLAT_MAX
 *   members, the fast reader accepts, with one exception: the empty
 *   object "{}", which it declines (no member could be a message's
 *   "type": its callers go to jansson for it, as for anything declined).
 *
 * - ngx_ws_relay_json_load() accepts what jansson accepts with the same
 *   flags, and gives an equal value, unless the value nests deeper than
 *   NGX_WS_RELAY_JSON_MAX_DEPTH, which it refuses.  (JSON_DISABLE_EOF_CHECK
 *   is not tried: the depth check reads the whole text, jansson stops
 *   after the first value; the module never asks for it.)
 *
 * - ngx_ws_relay_json_falsy() agrees, on every value of what was loaded
 *   and on NULL, with an oracle of its own below that goes by the compact
 *   text jansson writes for the value.
 *
 * - ngx_ws_relay_json_write_string() of the text, when it is UTF-8 (as
 *   json_stringn() decides), writes what json_dumps() writes for that
 *   string with JSON_ENCODE_ANY|JSON_COMPACT, within
 *   NGX_WS_RELAY_JSON_STR_LEN(), and jansson reads it back to the same
 *   bytes; any other text still stays within the bound.
 *
 * - ngx_ws_relay_json_dump() of the loaded value writes what json_dumps()
 *   writes with the same flags; ngx_ws_relay_json_string() is the string.
 *
 * Every buffer handed to the module is of the exact size, on the heap:
 * ASan sees a read or write past its end.
 */


#include "fuzz.h"
#include "ngx_ws_relay_json.h"


/* values of a loaded text whose falsiness is checked, at most */
#define FUZZ_FALSY_MAX  256


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_read_flat(u_char *text, size_t len);
static void fuzz_load(u_char *text, size_t len, size_t flags);
static void fuzz_write_string(u_char *text, size_t len);
static void fuzz_falsy(json_t *value, ngx_uint_t *budget);
static ngx_uint_t fuzz_falsy_oracle(json_t *value);
static ngx_uint_t fuzz_flat_strings(json_t *json);
static u_char *fuzz_copy(const u_char *data, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *text;
    size_t   flags;

    if (size == 0) {
        return 0;
    }

    flags = ((data[0] & 1) ? JSON_DECODE_ANY : 0)
            | ((data[0] & 2) ? JSON_ALLOW_NUL : 0)
            | ((data[0] & 4) ? JSON_DECODE_INT_AS_REAL : 0);

    text = fuzz_copy(data + 1, size - 1);

    fuzz_read_flat(text, size - 1);
    fuzz_load(text, size - 1, flags);
    fuzz_write_string(text, size - 1);

    free(text);

    fuzz_assert(ngx_ws_relay_json_falsy(NULL) && fuzz_falsy_oracle(NULL));

    return 0;
}


static void
fuzz_read_flat(u_char *text, size_t len)
{
    char                        *name;
    json_t                      *ref, *value;
    ngx_int_t                    rc;
    ngx_uint_t                   i, n;
    json_error_t                 error;
    ngx_ws_relay_json_member_t   members[NGX_WS_RELAY_JSON_FLAT_MAX];

    ngx_memset(members, 0xa5, sizeof(members));

    rc = ngx_ws_relay_json_read_flat(text, len, members, &n);

    fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED);

    ref = json_loadb((char *) text, len, JSON_REJECT_DUPLICATES, &error);

    if (rc == NGX_DECLINED) {
        /* only what the reader may decline: see the top of the file */
        fuzz_assert(ref == NULL || !fuzz_flat_strings(ref)
                    || ngx_strlchr(text, text + len, '\\') != NULL
                    || json_object_size(ref) == 0
                    || json_object_size(ref) > NGX_WS_RELAY_JSON_FLAT_MAX);

        json_decref(ref);
        return;
    }

    fuzz_assert(ref != NULL && json_is_object(ref));
    fuzz_assert(n >= 1 && n <= NGX_WS_RELAY_JSON_FLAT_MAX);
    fuzz_assert(json_object_size(ref) == n);

    for (i = 0; i < n; i++) {

        /* the strings are the input's own bytes */
        fuzz_assert(members[i].name.data >= text
                    && members[i].name.data + members[i].name.len
                       <= text + len);
        fuzz_assert(members[i].value.data >= text
                    && members[i].value.data + members[i].value.len
                       <= text + len);

        value = json_object_getn(ref, (char *) members[i].name.data,
                                 members[i].name.len);

        fuzz_assert(fuzz_json_str_eq(value, &members[i].value));

        /* no control character, so no NUL: the name is a C string */
        name = (char *) fuzz_copy(members[i].name.data,
                                  members[i].name.len + 1);
        name[members[i].name.len] = '\0';

        fuzz_assert(ngx_strlen(name) == members[i].name.len);
        fuzz_assert(ngx_ws_relay_json_flat_get(members, n, name)
                    == &members[i].value);

        free(name);
    }

    fuzz_assert(ngx_ws_relay_json_flat_get(members, n, "no such member")
                == NULL || json_object_get(ref, "no such member") != NULL);

    json_decref(ref);
}


static void
fuzz_load(u_char *text, size_t len, size_t flags)
{
    char          *dumped;
    json_t        *json, *ref;
    ngx_str_t      out;
    ngx_uint_t     budget;
    json_error_t   error;

    json = ngx_ws_relay_json_load(text, len, flags, &error);
    ref = json_loadb((char *) text, len, flags|JSON_REJECT_DUPLICATES,
                     &error);

    if (ref == NULL || fuzz_json_depth(ref) > NGX_WS_RELAY_JSON_MAX_DEPTH) {
        fuzz_assert(json == NULL);
        json_decref(ref);
        return;
    }

    fuzz_assert(json != NULL && json_equal(json, ref));

    budget = FUZZ_FALSY_MAX;
    fuzz_falsy(json, &budget);

    dumped = json_dumps(ref, JSON_ENCODE_ANY|JSON_COMPACT
                             |JSON_PRESERVE_ORDER);

    if (json_is_object(json) || json_is_array(json)) {
        fuzz_assert(ngx_ws_relay_json_dump(json, &out) == NGX_OK);
        fuzz_assert(dumped != NULL && out.len == strlen(dumped)
                    && ngx_memcmp(out.data, dumped, out.len) == 0);
    }

    free(dumped);
    json_decref(json);
    json_decref(ref);
}


static void
fuzz_write_string(u_char *text, size_t len)
{
    char          *ref;
    u_char        *out, *p;
    json_t        *s, *back;
    ngx_str_t      str;
    json_error_t   error;

    str.data = text;
    str.len = len;

    out = malloc(NGX_WS_RELAY_JSON_STR_LEN(len));
    fuzz_assert(out != NULL);

    p = ngx_ws_relay_json_write_string(out, &str);

    fuzz_assert(p > out
                && (size_t) (p - out) <= NGX_WS_RELAY_JSON_STR_LEN(len));

    /* jansson takes only UTF-8 for a string */
    s = ngx_ws_relay_json_string(&str);

    if (s == NULL) {
        fuzz_assert(json_stringn((char *) text, len) == NULL);
        free(out);
        return;
    }

    fuzz_assert(fuzz_json_str_eq(s, &str));

    ref = json_dumps(s, JSON_ENCODE_ANY|JSON_COMPACT);
    fuzz_assert(ref != NULL);

    fuzz_assert((size_t) (p - out) == strlen(ref)
                && ngx_memcmp(out, ref, p - out) == 0);

    back = json_loadb((char *) out, p - out, JSON_DECODE_ANY|JSON_ALLOW_NUL,
                      &error);

    fuzz_assert(fuzz_json_str_eq(back, &str));

    json_decref(back);
    free(ref);
    json_decref(s);
    free(out);
}


/* every value, depth first, while the budget lasts */

static void
fuzz_falsy(json_t *value, ngx_uint_t *budget)
{
    size_t       i;
    json_t      *v;
    const char  *key;

    if (*budget == 0) {
        return;
    }

    (*budget)--;

    fuzz_assert(ngx_ws_relay_json_falsy(value) == fuzz_falsy_oracle(value));

    if (json_is_object(value)) {
        json_object_foreach(value, key, v) {
            fuzz_falsy(v, budget);
        }

    } else if (json_is_array(value)) {
        json_array_foreach(value, i, v) {
            fuzz_falsy(v, budget);
        }
    }
}


/*
 * The oracle of JavaScript's falsiness for what JSON can hold: undefined
 * (no value), null, false, "", 0 and -0, whatever their form.  It reads
 * the compact text jansson writes: a real is written with a ".0" when it
 * has no fraction, so 0 is "0", 0.0 "0.0" and -0.0 "-0.0"; NaN cannot be
 * a JSON value.  Objects and arrays are truthy, even empty.
 */

static ngx_uint_t
fuzz_falsy_oracle(json_t *value)
{
    char        *text;
    ngx_uint_t   i, falsy;

    static const char  *falsy_texts[] = {
        "null", "false", "\"\"", "0", "-0", "0.0", "-0.0", NULL
    };

    if (value == NULL) {
        return 1;
    }

    if (json_is_object(value) || json_is_array(value)) {
        return 0;
    }

    text = json_dumps(value, JSON_ENCODE_ANY|JSON_COMPACT);
    fuzz_assert(text != NULL);

    falsy = 0;

    for (i = 0; falsy_texts[i]; i++) {
        if (strcmp(text, falsy_texts[i]) == 0) {
            falsy = 1;
        }
    }

    free(text);

    return falsy;
}


/* an object whose members are all strings */

static ngx_uint_t
fuzz_flat_strings(json_t *json)
{
    json_t      *value;
    const char  *key;

    if (!json_is_object(json)) {
        return 0;
    }

    json_object_foreach(json, key, value) {
        if (!json_is_string(value)) {
            return 0;
        }
    }

    return 1;
}


static u_char *
fuzz_copy(const u_char *data, size_t len)
{
    u_char  *p;

    p = malloc(len ? len : 1);
    fuzz_assert(p != NULL);

    if (len) {
        ngx_memcpy(p, data, len);
    }

    return p;
}

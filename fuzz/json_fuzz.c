
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: ngx_ws_relay_json.c against jansson and oracles of
 * JavaScript's own.  The input is a JSON text and a string to write.
 *
 * - ngx_ws_relay_json_read() accepts what JSON.parse() accepts: what
 *   jansson accepts of the text (fuzz_json.h: lone surrogates, NUL in
 *   names and numbers beyond a double are JSON.parse()'s), within
 *   NGX_WS_RELAY_JSON_MAX_DEPTH levels (of a top-level object's members,
 *   or of any other value); NGX_OK for an object, NGX_DECLINED for any
 *   other value, NGX_ERROR with a reason for the rest.
 *
 * - Of an object, it is asked for a few names of the text itself (the
 *   first, the middle and the last member, those with escapes in their
 *   name) and for the protocol's, each at most FUZZ_JSON_NAME_MAX bytes.
 *   Each field holds the last member of its name, found by the text's own
 *   scan (fuzz_json.h): its exact span of the text, of jansson's type for
 *   it, escaped when it is a string with a backslash; jansson's object
 *   has that value for the name.  Then:
 *
 *     falsy() is JavaScript's !value, from jansson's value: null, false,
 *     "" and numbers equal to 0 (1e-400 too; 1e400 is Infinity);
 *
 *     unescape() of a string is jansson's string (lone surrogates as
 *     WTF-8, compared through their images), within the text's length;
 *
 *     copy() is the text without white space outside strings, and jansson
 *     reads it to a value equal to the member's;
 *
 *     js_string() stays within NGX_WS_RELAY_JSON_JS_LEN() and is
 *     String(value) (fuzz_js_string()); of a number it is also checked
 *     without that oracle: an integer of at most 15 digits as it is
 *     written ("-0": "0"), else the value of the text as strtod() reads
 *     it, +-Infinity or 0, or digits that read back as it, as few as
 *     can (no string of one digit less next to it reads back as it), the
 *     closest of that many, laid out as ECMAScript lays them out.
 *
 * - ngx_ws_relay_json_wtf8() of the input is an oracle's UTF-8 with
 *   surrogate code points; write_string() of any input stays within
 *   NGX_WS_RELAY_JSON_STR_LEN(), and of what wtf8() accepts is what
 *   JSON.stringify() writes (an oracle below), which jansson reads back
 *   to the same bytes when there is no surrogate, and which
 *   ngx_ws_relay_json_read() of {"k":<it>} and unescape() read back to
 *   the same bytes, lone surrogates too.
 *
 * Every buffer given to the module is a heap block of the exact size: ASan
 * sees any read or write past it.
 */


#include "fuzz_json.h"
#include <math.h>


/* names asked for, at most */
#define FUZZ_NAMES  16


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_read(u_char *text, size_t len);
static ngx_uint_t fuzz_names(fuzz_doc_t *doc, ngx_str_t *names);
static void fuzz_add_name(ngx_str_t *names, ngx_uint_t *n, u_char *data,
    size_t len);
static void fuzz_check_field(fuzz_doc_t *doc, ngx_ws_relay_json_field_t *f);
static void fuzz_check_type(ngx_ws_relay_json_type_e type, json_t *json);
static void fuzz_check_number(ngx_str_t *text, u_char *out, size_t len);
static void fuzz_number_digits(u_char *out, size_t len, u_char *digits,
    int *k, int *n);
static ngx_uint_t fuzz_reads_back(const char *mantissa, int exp, double d);
static void fuzz_write(u_char *s, size_t len);
static ngx_uint_t fuzz_wtf8(u_char *s, size_t len, ngx_uint_t *surrogates,
    ngx_uint_t *paired);
static void fuzz_stringify(fuzz_buf_t *b, u_char *s, size_t len);
static size_t fuzz_join_pairs(u_char *dst, u_char *s, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *text;

    text = fuzz_dup(data, size);

    fuzz_read(text, size);
    fuzz_write(text, size);

    free(text);

    return 0;
}


static void
fuzz_read(u_char *text, size_t len)
{
    ngx_int_t                   rc, expect;
    ngx_str_t                   names[FUZZ_NAMES];
    json_t                     *names_seen;
    ngx_uint_t                  i, n;
    fuzz_doc_t                  doc;
    const char                 *error;
    ngx_ws_relay_json_field_t  *fields;

    fuzz_doc_read(&doc, text, len);

    if (!fuzz_doc_fits(&doc)) {
        expect = NGX_ERROR;

    } else {
        expect = json_is_object(doc.json) ? NGX_OK : NGX_DECLINED;
    }

    n = fuzz_names(&doc, names);

    fields = malloc(n * sizeof(ngx_ws_relay_json_field_t));
    fuzz_assert(fields != NULL);
    ngx_memset(fields, 0xa5, n * sizeof(ngx_ws_relay_json_field_t));

    for (i = 0; i < n; i++) {
        fields[i].name = names[i];
    }

    error = NULL;

    rc = ngx_ws_relay_json_read(text, len, fields, n, &error);

    if (rc != expect) {
        fprintf(stderr, "read: %d, expected %d (jansson: %s, %u patches)\n",
                (int) rc, (int) expect, doc.json ? "valid" : "invalid",
                (unsigned) (doc.surrogates + doc.nul_keys + doc.overflows));
    }

    fuzz_assert(rc == expect);
    fuzz_assert(rc != NGX_ERROR || (error != NULL && *error != '\0'));

    if (rc == NGX_OK) {

        /*
         * The scan found the object's members, each a value of its own,
         * as many names as jansson's object has: a check of the oracle.
         */
        names_seen = json_object();
        fuzz_assert(names_seen != NULL);

        for (i = 0; i < doc.nmembers; i++) {
            json_decref(fuzz_doc_value(&doc, &doc.members[i]));
            fuzz_assert(json_object_setn(names_seen,
                                         json_string_value(
                                             doc.members[i].name),
                                         json_string_length(
                                             doc.members[i].name),
                                         json_null())
                        == 0);
        }

        fuzz_assert(json_object_size(names_seen)
                    == json_object_size(doc.json));
        json_decref(names_seen);

        for (i = 0; i < n; i++) {
            fuzz_check_field(&doc, &fields[i]);
        }
    }

    for (i = 0; i < n; i++) {
        free(names[i].data);
    }

    free(fields);
    fuzz_doc_free(&doc);
}


/*
 * The names asked for: the protocol's, then some of the object's own, as
 * WTF-8, at most FUZZ_JSON_NAME_MAX bytes, each once.
 */

static ngx_uint_t
fuzz_names(fuzz_doc_t *doc, ngx_str_t *names)
{
    ngx_str_t       name;
    ngx_uint_t      i, n, pick[3], escaped;
    fuzz_member_t  *m;

    static const char  *fixed[] = {
        "type", "userId", "targetUserId", "text", "action", "data", "",
        NULL
    };

    n = 0;

    for (i = 0; fixed[i]; i++) {
        fuzz_add_name(names, &n, (u_char *) fixed[i], strlen(fixed[i]));
    }

    if (doc->nmembers == 0) {
        return n;
    }

    pick[0] = 0;
    pick[1] = doc->nmembers / 2;
    pick[2] = doc->nmembers - 1;
    escaped = 0;

    for (i = 0; i < doc->nmembers && n < FUZZ_NAMES; i++) {
        m = &doc->members[i];

        if (i != pick[0] && i != pick[1] && i != pick[2]) {
            if (escaped == 3
                || ngx_strlchr((u_char *) doc->text + m->key,
                               (u_char *) doc->text + m->key + m->key_len,
                               '\\')
                   == NULL)
            {
                continue;
            }

            escaped++;
        }

        /* a name with an image may be a name of U+E000-U+E800 too */
        if (doc->collide_chars
            && memchr(json_string_value(m->name), 0xee,
                      json_string_length(m->name)))
        {
            continue;
        }

        if (!fuzz_unimage_key(&name, m->name)) {
            continue;
        }

        if (name.len <= FUZZ_JSON_NAME_MAX) {
            fuzz_add_name(names, &n, name.data, name.len);
        }

        free(name.data);
    }

    return n;
}


static void
fuzz_add_name(ngx_str_t *names, ngx_uint_t *n, u_char *data, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < *n; i++) {
        if (names[i].len == len
            && (len == 0 || ngx_memcmp(names[i].data, data, len) == 0))
        {
            return;
        }
    }

    if (*n == FUZZ_NAMES) {
        return;
    }

    names[*n].data = fuzz_dup(data, len);
    names[*n].len = len;
    (*n)++;
}


static void
fuzz_check_field(fuzz_doc_t *doc, ngx_ws_relay_json_field_t *f)
{
    u_char                     *buf, *p, *image;
    size_t                      n, bound;
    json_t                     *value, *ref;
    ngx_str_t                  *text;
    fuzz_buf_t                  js;
    fuzz_doc_t                  copy;
    fuzz_member_t              *m, *js_m;
    ngx_ws_relay_json_value_t  *v;

    v = &f->value;
    text = &v->text;

    m = fuzz_doc_member(doc, f->name.data, f->name.len, FUZZ_JSON_ANY_KEY);
    js_m = fuzz_doc_member(doc, f->name.data, f->name.len,
                           FUZZ_JSON_ANY_KEY);

    /* jansson's object has the value that JSON.parse() gives the name */

    image = malloc(3 * f->name.len + 1);
    fuzz_assert(image != NULL);
    n = fuzz_image(image, f->name.data, f->name.len, 1);
    ref = json_object_getn(doc->json, (char *) image, n);
    free(image);

    if (js_m == NULL) {
        fuzz_assert(ref == NULL);

    } else {
        value = fuzz_doc_value(doc, js_m);
        fuzz_assert(json_equal(value, ref));
        json_decref(value);
    }

    js.data = NULL;
    js.len = 0;
    js.size = 0;

    if (m == NULL) {
        fuzz_assert(v->type == NGX_WS_RELAY_JSON_NONE);
        fuzz_assert(ngx_ws_relay_json_falsy(v));

        buf = malloc(NGX_WS_RELAY_JSON_JS_LEN(0));
        fuzz_assert(buf != NULL);
        p = ngx_ws_relay_json_js_string(buf, v);
        fuzz_assert(p - buf == 9 && ngx_memcmp(buf, "undefined", 9) == 0);
        free(buf);

        return;
    }

    /* the member's own text */
    fuzz_assert(text->data == doc->text + m->value
                && text->len == m->value_len);

    value = fuzz_doc_value(doc, m);

    fuzz_check_type(v->type, value);
    fuzz_assert(v->escaped
                == (v->type == NGX_WS_RELAY_JSON_STRING
                    && ngx_strlchr(text->data, text->data + text->len, '\\')
                       != NULL));

    fuzz_assert(ngx_ws_relay_json_falsy(v) == fuzz_js_falsy(value));

    if (v->type == NGX_WS_RELAY_JSON_STRING) {
        buf = malloc(text->len);
        fuzz_assert(buf != NULL);

        n = ngx_ws_relay_json_unescape(buf, v);
        fuzz_assert(n <= text->len - 2);
        fuzz_assert(fuzz_json_is_wtf8(value, buf, n));

        free(buf);
    }

    /* copy(): the compact text, of the same value */

    buf = malloc(text->len);
    image = malloc(text->len);
    fuzz_assert(buf != NULL && image != NULL);

    p = ngx_ws_relay_json_copy(buf, text);
    n = fuzz_compact(image, text->data, text->len);

    fuzz_assert((size_t) (p - buf) == n && ngx_memcmp(buf, image, n) == 0);

    fuzz_doc_read(&copy, buf, n);
    fuzz_assert(copy.json != NULL && json_equal(copy.json, value));
    fuzz_doc_free(&copy);

    free(image);
    free(buf);

    /* js_string(): String(value) */

    bound = NGX_WS_RELAY_JSON_JS_LEN(text->len);
    buf = malloc(bound);
    fuzz_assert(buf != NULL);

    p = ngx_ws_relay_json_js_string(buf, v);
    fuzz_assert((size_t) (p - buf) <= bound);

    if (v->type == NGX_WS_RELAY_JSON_NUMBER) {
        fuzz_check_number(text, buf, p - buf);
    }

    /* 7e-99 itself would be taken for Infinity */
    if (!doc->collide_marker) {
        fuzz_js_string(&js, value);

        image = malloc(3 * (p - buf) + 1);
        fuzz_assert(image != NULL);
        n = fuzz_image(image, buf, p - buf, 0);

        fuzz_buf_add(&js, "", 0);

        if (n != js.len || ngx_memcmp(image, js.data, n) != 0) {
            fprintf(stderr, "String(%.*s): \"%.*s\", expected \"%.*s\"\n",
                    (int) text->len, text->data, (int) (p - buf), buf,
                    (int) js.len, js.data);
        }

        fuzz_assert(n == js.len && (n == 0
                                    || ngx_memcmp(image, js.data, n) == 0));
        free(image);
        fuzz_buf_free(&js);
    }

    free(buf);
    json_decref(value);
}


/* jansson reads every number as a real (JSON_DECODE_INT_AS_REAL) */

static void
fuzz_check_type(ngx_ws_relay_json_type_e type, json_t *json)
{
    static const json_type  types[] = {
        [NGX_WS_RELAY_JSON_NULL] = JSON_NULL,
        [NGX_WS_RELAY_JSON_FALSE] = JSON_FALSE,
        [NGX_WS_RELAY_JSON_TRUE] = JSON_TRUE,
        [NGX_WS_RELAY_JSON_NUMBER] = JSON_REAL,
        [NGX_WS_RELAY_JSON_STRING] = JSON_STRING,
        [NGX_WS_RELAY_JSON_ARRAY] = JSON_ARRAY,
        [NGX_WS_RELAY_JSON_OBJECT] = JSON_OBJECT
    };

    fuzz_assert(type > NGX_WS_RELAY_JSON_NONE
                && type <= NGX_WS_RELAY_JSON_OBJECT);
    fuzz_assert(json_typeof(json) == types[type]);
}


/* String() of the number text: out, len bytes */

static void
fuzz_check_number(ngx_str_t *text, u_char *out, size_t len)
{
    int          k, n, i, shift;
    char        *copy, *end, mantissa[32], fewer[32];
    double       d, back;
    u_char       digits[32];
    size_t       ndigits;
    fuzz_buf_t   b;
    long long    m;

    /* an integer of up to 15 digits is exact: as it is, but for "-0" */

    ndigits = text->len - (text->data[0] == '-');

    if (ngx_strlchr(text->data, text->data + text->len, '.') == NULL
        && ngx_strlchr(text->data, text->data + text->len, 'e') == NULL
        && ngx_strlchr(text->data, text->data + text->len, 'E') == NULL
        && ndigits <= 15)
    {
        if (text->len == 2 && text->data[0] == '-' && text->data[1] == '0') {
            fuzz_assert(len == 1 && out[0] == '0');

        } else {
            fuzz_assert(len == text->len
                        && ngx_memcmp(out, text->data, len) == 0);
        }

        return;
    }

    copy = malloc(text->len + 1);
    fuzz_assert(copy != NULL);
    ngx_memcpy(copy, text->data, text->len);
    copy[text->len] = '\0';
    d = strtod(copy, NULL);
    free(copy);

    if (isinf(d)) {
        fuzz_assert(d > 0 ? (len == 8 && ngx_memcmp(out, "Infinity", 8) == 0)
                          : (len == 9
                             && ngx_memcmp(out, "-Infinity", 9) == 0));
        return;
    }

    if (d == 0) {
        fuzz_assert(len == 1 && out[0] == '0');
        return;
    }

    /* reads back as d */

    copy = malloc(len + 1);
    fuzz_assert(copy != NULL);
    ngx_memcpy(copy, out, len);
    copy[len] = '\0';
    back = strtod(copy, &end);
    fuzz_assert(end == copy + len && back == d);
    free(copy);

    if (d < 0) {
        fuzz_assert(out[0] == '-');
        out++;
        len--;
        d = -d;
    }

    /* laid out as ECMAScript says for its digits and point */

    fuzz_number_digits(out, len, digits, &k, &n);

    ngx_memzero(&b, sizeof(fuzz_buf_t));
    fuzz_js_layout(&b, (char *) digits, k, n);

    fuzz_assert(b.len == len && ngx_memcmp(b.data, out, len) == 0);
    fuzz_buf_free(&b);

    /* the closest of k digits */

    fuzz_assert(k <= 17);

    snprintf(mantissa, sizeof(mantissa), "%.*e", k - 1, d);
    fuzz_number_digits((u_char *) mantissa, strlen(mantissa),
                       (u_char *) fewer, &i, &shift);
    fuzz_assert(i == k && shift == n && ngx_memcmp(fewer, digits, k) == 0);

    /*
     * The fewest: of k - 1 digits, neither the closest nor those next to
     * it read back as d.
     */

    if (k == 1) {
        return;
    }

    snprintf(mantissa, sizeof(mantissa), "%.*e", k - 2, d);

    m = 0;
    for (i = 0; mantissa[i] != 'e'; i++) {
        if (mantissa[i] != '.') {
            m = m * 10 + (mantissa[i] - '0');
        }
    }

    /* d = m * 10^shift */
    shift = atoi(strchr(mantissa, 'e') + 1) - (k - 2);

    for (i = -1; i <= 1; i++) {
        if (m + i <= 0) {
            continue;
        }

        snprintf(fewer, sizeof(fewer), "%lld", m + i);
        fuzz_assert(!fuzz_reads_back(fewer, shift, d));
    }
}


/*
 * The significant digits of a number as JavaScript writes it (ddd, d.dd,
 * 0.00dd, de+x, d.dde-x), and n: the value is 0.digits * 10^n.
 */

static void
fuzz_number_digits(u_char *out, size_t len, u_char *digits, int *k, int *n)
{
    int      count, point, zeros, exp;
    size_t   i;

    count = 0;
    point = -1;
    zeros = 0;
    exp = 0;

    for (i = 0; i < len; i++) {

        if (out[i] == '.') {
            point = count + zeros;
            continue;
        }

        if (out[i] == 'e') {
            exp = atoi((char *) out + i + 1);
            break;
        }

        fuzz_assert(out[i] >= '0' && out[i] <= '9');

        if (count == 0 && out[i] == '0') {
            zeros++;
            continue;
        }

        fuzz_assert(count < 31);
        digits[count++] = out[i];
    }

    fuzz_assert(count > 0);

    if (point < 0) {
        point = count + zeros;
    }

    while (count > 1 && digits[count - 1] == '0') {
        count--;
    }

    *k = count;
    *n = point - zeros + exp;
}


static ngx_uint_t
fuzz_reads_back(const char *mantissa, int exp, double d)
{
    char  buf[64];

    snprintf(buf, sizeof(buf), "%se%d", mantissa, exp);

    return strtod(buf, NULL) == d;
}


/* write_string(), wtf8() */

static void
fuzz_write(u_char *s, size_t len)
{
    u_char                     *out, *p, *doc, *back;
    size_t                      n, bound;
    json_t                     *json;
    ngx_int_t                   rc;
    ngx_str_t                   str;
    ngx_uint_t                  valid, wtf8, surrogates, paired;
    fuzz_buf_t                  expect;
    json_error_t                error;
    const char                 *err;
    ngx_ws_relay_json_field_t  *field;

    str.data = s;
    str.len = len;

    bound = NGX_WS_RELAY_JSON_STR_LEN(len);
    out = malloc(bound);
    fuzz_assert(out != NULL);

    p = ngx_ws_relay_json_write_string(out, &str);
    fuzz_assert(p > out && (size_t) (p - out) <= bound);

    valid = fuzz_wtf8(s, len, &surrogates, &paired);
    wtf8 = ngx_ws_relay_json_wtf8(&str);

    fuzz_assert(wtf8 == (valid && !paired));

    if (!wtf8) {
        free(out);
        return;
    }

    /* as JSON.stringify() writes it */

    expect.data = NULL;
    expect.len = 0;
    expect.size = 0;

    fuzz_stringify(&expect, s, len);

    fuzz_assert(expect.len == (size_t) (p - out)
                && ngx_memcmp(expect.data, out, expect.len) == 0);
    fuzz_buf_free(&expect);

    /* jansson reads it back */

    if (!surrogates) {
        json = json_loadb((char *) out, p - out, FUZZ_JSON_FLAGS, &error);
        fuzz_assert(json_is_string(json)
                    && json_string_length(json) == len
                    && (len == 0
                        || ngx_memcmp(json_string_value(json), s, len)
                           == 0));
        json_decref(json);
    }

    /* and so does the module's reader, as a member */

    n = sizeof("{\"k\":}") - 1 + (p - out);
    doc = malloc(n);
    field = malloc(sizeof(ngx_ws_relay_json_field_t));
    fuzz_assert(doc != NULL && field != NULL);

    ngx_memcpy(doc, "{\"k\":", 5);
    ngx_memcpy(doc + 5, out, p - out);
    doc[n - 1] = '}';

    ngx_str_set(&field->name, "k");

    rc = ngx_ws_relay_json_read(doc, n, field, 1, &err);
    fuzz_assert(rc == NGX_OK);
    fuzz_assert(field->value.type == NGX_WS_RELAY_JSON_STRING
                && field->value.text.data == doc + 5
                && field->value.text.len == (size_t) (p - out));

    back = malloc(field->value.text.len);
    fuzz_assert(back != NULL);

    n = ngx_ws_relay_json_unescape(back, &field->value);

    if (paired) {
        /* bug 3: the pairs come back as what they stand for */
        p = malloc(len ? len : 1);
        fuzz_assert(p != NULL);
        len = fuzz_join_pairs(p, s, len);
        fuzz_assert(n == len && ngx_memcmp(back, p, n) == 0);
        free(p);

    } else {
        fuzz_assert(n == len && (n == 0 || ngx_memcmp(back, s, n) == 0));
    }

    free(back);
    free(field);
    free(doc);
    free(out);
}


/*
 * UTF-8 with surrogate code points (ED A0-BF xx): code points decoded and
 * then checked for their shortest form and range.  paired: a high
 * surrogate directly followed by a low one, which WTF-8 writes as one
 * code point.
 */

static ngx_uint_t
fuzz_wtf8(u_char *s, size_t len, ngx_uint_t *surrogates, ngx_uint_t *paired)
{
    size_t      i, k, n;
    uint32_t    cp, min, prev;

    *surrogates = 0;
    *paired = 0;
    prev = 0;

    for (i = 0; i < len; i += n) {

        if (s[i] < 0x80) {
            n = 1;
            prev = 0;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            n = 2;
            cp = s[i] & 0x1f;
            min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = s[i] & 0x0f;
            min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 4;
            cp = s[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (len - i < n) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff) {
            return 0;
        }

        if (cp >= 0xd800 && cp <= 0xdfff) {
            (*surrogates)++;

            if (cp >= 0xdc00 && prev >= 0xd800 && prev <= 0xdbff) {
                (*paired)++;
            }
        }

        prev = cp;
    }

    return 1;
}


/* JSON.stringify() of a string of WTF-8 */

static void
fuzz_stringify(fuzz_buf_t *b, u_char *s, size_t len)
{
    char        buf[8];
    size_t      i;
    uint32_t    cp;

    fuzz_buf_add(b, "\"", 1);

    for (i = 0; i < len; i++) {

        if (s[i] == 0xed && len - i >= 3 && s[i + 1] >= 0xa0) {
            cp = 0xd000 | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
            snprintf(buf, sizeof(buf), "\\u%04x", (unsigned) cp);
            fuzz_buf_add(b, buf, 6);
            i += 2;
            continue;
        }

        switch (s[i]) {
        case '"':  fuzz_buf_add(b, "\\\"", 2); continue;
        case '\\': fuzz_buf_add(b, "\\\\", 2); continue;
        case '\b': fuzz_buf_add(b, "\\b", 2); continue;
        case '\f': fuzz_buf_add(b, "\\f", 2); continue;
        case '\n': fuzz_buf_add(b, "\\n", 2); continue;
        case '\r': fuzz_buf_add(b, "\\r", 2); continue;
        case '\t': fuzz_buf_add(b, "\\t", 2); continue;
        }

        if (s[i] < 0x20) {
            snprintf(buf, sizeof(buf), "\\u%04x", (unsigned) s[i]);
            fuzz_buf_add(b, buf, 6);
            continue;
        }

        fuzz_buf_add(b, s + i, 1);
    }

    fuzz_buf_add(b, "\"", 1);
}


/* ED A0-AF xx ED B0-BF xx, a pair of surrogates, as its code point */

static size_t
fuzz_join_pairs(u_char *dst, u_char *s, size_t len)
{
    size_t     i;
    u_char    *p;
    uint32_t   hi, lo, cp;

    p = dst;

    for (i = 0; i < len; /* void */) {

        if (len - i >= 6 && s[i] == 0xed && s[i + 1] >= 0xa0
            && s[i + 1] <= 0xaf && s[i + 3] == 0xed && s[i + 4] >= 0xb0)
        {
            hi = 0xd000 | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
            lo = 0xd000 | ((s[i + 4] & 0x3f) << 6) | (s[i + 5] & 0x3f);
            cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);

            *p++ = 0xf0 | (cp >> 18);
            *p++ = 0x80 | ((cp >> 12) & 0x3f);
            *p++ = 0x80 | ((cp >> 6) & 0x3f);
            *p++ = 0x80 | (cp & 0x3f);
            i += 6;
            continue;
        }

        *p++ = s[i++];
    }

    return p - dst;
}

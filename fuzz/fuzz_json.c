
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/* see fuzz_json.h */


#include "fuzz_json.h"
#include <math.h>


static size_t fuzz_string_end(fuzz_doc_t *doc, size_t p);
static void fuzz_patch_nul(fuzz_doc_t *doc, size_t start, size_t end);
static size_t fuzz_number_end(fuzz_doc_t *doc, size_t p);
static ngx_uint_t fuzz_number_valid(const u_char *p, size_t len);
static ngx_uint_t fuzz_hex4(const u_char *p, uint32_t *cp);
static void fuzz_put_escape(u_char *p, uint32_t cp);
static u_char *fuzz_put_utf8(u_char *p, uint32_t cp);
static ngx_uint_t fuzz_is_space(u_char c);


void
fuzz_doc_read(fuzz_doc_t *doc, const u_char *text, size_t len)
{
    u_char          c;
    size_t          p, q, start, depth, size;
    ngx_uint_t      open, has_value, i;
    json_error_t    error;
    fuzz_member_t   m;

    ngx_memzero(doc, sizeof(fuzz_doc_t));

    doc->text = text;
    doc->len = len;
    doc->patched = malloc(len ? len : 1);
    fuzz_assert(doc->patched != NULL);

    if (len) {
        ngx_memcpy(doc->patched, text, len);
    }

    for (p = 0; p < len && fuzz_is_space(text[p]); p++) { /* void */ }

    doc->object = (p < len && text[p] == '{');

    depth = 0;
    open = 0;
    has_value = 0;
    size = 0;
    ngx_memzero(&m, sizeof(fuzz_member_t));

    while (p < len) {
        c = text[p];
        start = p;

        if (fuzz_is_space(c)) {
            p++;
            continue;
        }

        switch (c) {

        case '"':
            p = fuzz_string_end(doc, p);

            for (q = p; q < len && fuzz_is_space(text[q]); q++) { /* void */ }

            if (q < len && text[q] == ':') {
                fuzz_patch_nul(doc, start, p);

                if (doc->object && depth == 1) {
                    /* a name of the top-level object: a member starts */
                    open = 1;
                    has_value = 0;
                    m.key = start;
                    m.key_len = p - start;
                    p = q + 1;
                    continue;
                }
            }

            break;

        case '{':
        case '[':
            p++;
            break;

        case '}':
        case ']':
        case ',':
            if (doc->object && depth == 1) {
                /* the member ends */
                if (open && has_value) {
                    if (doc->nmembers == size) {
                        size = size ? 2 * size : 8;
                        doc->members = realloc(doc->members,
                                               size * sizeof(fuzz_member_t));
                        fuzz_assert(doc->members != NULL);
                    }

                    doc->members[doc->nmembers++] = m;
                }

                open = 0;

                if (c != ',') {
                    depth--;
                }

                p++;
                continue;
            }

            if (c != ',' && depth > 0) {
                depth--;
            }

            p++;
            break;

        default:
            if (c == '-' || (c >= '0' && c <= '9')) {
                p = fuzz_number_end(doc, p);

            } else {
                p++;
            }
        }

        /* a token of a member's value, from start to p */

        if (open && depth >= 1) {
            if (!has_value) {
                has_value = 1;
                m.value = start;
            }

            m.value_len = p - m.value;
        }

        if (c == '{' || c == '[') {
            depth++;
        }
    }

    /*
     * A NUL byte is no JSON anywhere (in a string it is a control
     * character), but jansson's stream takes one that follows a number or
     * a literal for the end of its buffer: "0\0" would pass.
     */

    if (len && memchr(text, '\0', len) != NULL) {
        doc->nmembers = 0;
        return;
    }

    doc->json = json_loadb((char *) doc->patched, len, FUZZ_JSON_FLAGS,
                           &error);

    if (doc->json == NULL || !json_is_object(doc->json)) {
        /* the scan means something of a valid object only */
        doc->nmembers = 0;
        return;
    }

    for (i = 0; i < doc->nmembers; i++) {
        doc->members[i].name = json_loadb((char *) doc->patched
                                          + doc->members[i].key,
                                          doc->members[i].key_len,
                                          FUZZ_JSON_FLAGS, &error);
        fuzz_assert(json_is_string(doc->members[i].name));
    }
}


void
fuzz_doc_free(fuzz_doc_t *doc)
{
    ngx_uint_t  i;

    for (i = 0; i < doc->nmembers; i++) {
        json_decref(doc->members[i].name);
    }

    free(doc->members);
    free(doc->patched);
    json_decref(doc->json);

    ngx_memzero(doc, sizeof(fuzz_doc_t));
}


/* p is at the opening quote: past the closing one, or the end */

static size_t
fuzz_string_end(fuzz_doc_t *doc, size_t p)
{
    u_char        c;
    size_t        len;
    uint32_t      cp, lo;
    const u_char  *t;

    t = doc->text;
    len = doc->len;

    for (p++; p < len; /* void */) {
        c = t[p];

        if (c == '"') {
            return p + 1;
        }

        if (c == 0xee) {
            /* U+E000-U+EFFF as it is */
            doc->collide_chars = 1;
        }

        if (c != '\\') {
            p++;
            continue;
        }

        if (p + 1 == len) {
            return len;
        }

        if (t[p + 1] != 'u' || len - p < 6 || !fuzz_hex4(t + p + 2, &cp)) {
            p += 2;
            continue;
        }

        if ((t[p + 2] | 0x20) == 'e') {
            doc->collide_chars = 1;
        }

        if (cp >= 0xd800 && cp <= 0xdbff && len - p >= 12
            && t[p + 6] == '\\' && t[p + 7] == 'u'
            && fuzz_hex4(t + p + 8, &lo) && lo >= 0xdc00 && lo <= 0xdfff)
        {
            /* a pair */
            p += 12;
            continue;
        }

        if (cp >= 0xd800 && cp <= 0xdfff) {
            fuzz_put_escape(doc->patched + p, 0xe000 + (cp - 0xd800));
            doc->surrogates++;
        }

        p += 6;
    }

    return len;
}


/* a member name's \u0000 escapes, between start and end */

static void
fuzz_patch_nul(fuzz_doc_t *doc, size_t start, size_t end)
{
    size_t         p;
    uint32_t       cp;
    const u_char  *t;

    t = doc->text;

    for (p = start + 1; p + 1 < end; /* void */) {

        if (t[p] != '\\') {
            p++;
            continue;
        }

        if (t[p + 1] == 'u' && end - p >= 6 && fuzz_hex4(t + p + 2, &cp)) {
            if (cp == 0) {
                fuzz_put_escape(doc->patched + p, 0xe800);
                doc->nul_keys++;
            }

            p += 6;
            continue;
        }

        p += 2;
    }
}


/*
 * The characters of a number from p, as jansson's lexer would take them
 * and more: one that is a number and too large for a double is replaced.
 */

static size_t
fuzz_number_end(fuzz_doc_t *doc, size_t p)
{
    char          *copy;
    u_char         c;
    size_t         q, s, n;
    double         d;
    const u_char  *t;

    t = doc->text;

    for (q = p; q < doc->len; q++) {
        c = t[q];

        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.'
              || c == 'e' || c == 'E'))
        {
            break;
        }
    }

    if (!fuzz_number_valid(t + p, q - p)) {
        return q;
    }

    copy = malloc(q - p + 1);
    fuzz_assert(copy != NULL);
    ngx_memcpy(copy, t + p, q - p);
    copy[q - p] = '\0';

    d = strtod(copy, NULL);
    free(copy);

    if (isinf(d)) {
        s = p + (t[p] == '-');
        n = q - s;

        /* no number of fewer than 5 characters is beyond a double */
        fuzz_assert(n >= 5);

        ngx_memcpy(doc->patched + s, "7e-", 3);
        ngx_memset(doc->patched + s + 3, '0', n - 5);
        ngx_memcpy(doc->patched + s + n - 2, "99", 2);

        doc->overflows++;

    } else if (fabs(d) == FUZZ_JSON_MARKER) {
        doc->collide_marker = 1;
    }

    return q;
}


/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */

static ngx_uint_t
fuzz_number_valid(const u_char *p, size_t len)
{
    size_t  i, digits;

    i = 0;

    if (i < len && p[i] == '-') {
        i++;
    }

    if (i < len && p[i] == '0') {
        i++;

    } else {
        for (digits = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            digits++;
        }

        if (digits == 0) {
            return 0;
        }
    }

    if (i < len && p[i] == '.') {
        for (i++, digits = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            digits++;
        }

        if (digits == 0) {
            return 0;
        }
    }

    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;

        if (i < len && (p[i] == '+' || p[i] == '-')) {
            i++;
        }

        for (digits = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            digits++;
        }

        if (digits == 0) {
            return 0;
        }
    }

    return i == len;
}


static ngx_uint_t
fuzz_hex4(const u_char *p, uint32_t *cp)
{
    u_char      c;
    ngx_uint_t  i;

    *cp = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            *cp = *cp * 16 + (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            *cp = *cp * 16 + (c - 'a' + 10);

        } else if (c >= 'A' && c <= 'F') {
            *cp = *cp * 16 + (c - 'A' + 10);

        } else {
            return 0;
        }
    }

    return 1;
}


static void
fuzz_put_escape(u_char *p, uint32_t cp)
{
    char  buf[7];

    snprintf(buf, sizeof(buf), "\\u%04x", (unsigned) cp);
    ngx_memcpy(p, buf, 6);
}


static u_char *
fuzz_put_utf8(u_char *p, uint32_t cp)
{
    if (cp < 0x80) {
        *p++ = cp;

    } else if (cp < 0x800) {
        *p++ = 0xc0 | (cp >> 6);
        *p++ = 0x80 | (cp & 0x3f);

    } else if (cp < 0x10000) {
        *p++ = 0xe0 | (cp >> 12);
        *p++ = 0x80 | ((cp >> 6) & 0x3f);
        *p++ = 0x80 | (cp & 0x3f);

    } else {
        *p++ = 0xf0 | (cp >> 18);
        *p++ = 0x80 | ((cp >> 12) & 0x3f);
        *p++ = 0x80 | ((cp >> 6) & 0x3f);
        *p++ = 0x80 | (cp & 0x3f);
    }

    return p;
}


static ngx_uint_t
fuzz_is_space(u_char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/*
 * The module counts the levels of a member's value of a top-level object,
 * and of any other value as a whole: an object or array is one level.
 */

ngx_uint_t
fuzz_doc_fits(fuzz_doc_t *doc)
{
    json_t      *value;
    const char  *key;

    if (doc->json == NULL) {
        return 0;
    }

    if (!json_is_object(doc->json)) {
        return fuzz_json_depth(doc->json) <= NGX_WS_RELAY_JSON_MAX_DEPTH;
    }

    json_object_foreach(doc->json, key, value) {
        if (fuzz_json_depth(value) > NGX_WS_RELAY_JSON_MAX_DEPTH) {
            return 0;
        }
    }

    return 1;
}


fuzz_member_t *
fuzz_doc_member(fuzz_doc_t *doc, const u_char *name, size_t len,
    size_t max_key)
{
    u_char         *image;
    size_t          n;
    ngx_uint_t      i;
    fuzz_member_t  *m, *found;

    image = malloc(3 * len + 1);
    fuzz_assert(image != NULL);

    n = fuzz_image(image, name, len, 1);
    found = NULL;

    for (i = doc->nmembers; i > 0; i--) {
        m = &doc->members[i - 1];

        if (m->key_len - 2 > max_key) {
            continue;
        }

        if (json_string_length(m->name) == n
            && (n == 0
                || ngx_memcmp(json_string_value(m->name), image, n) == 0))
        {
            found = m;
            break;
        }
    }

    free(image);

    return found;
}


json_t *
fuzz_doc_value(fuzz_doc_t *doc, fuzz_member_t *m)
{
    json_t        *json;
    json_error_t   error;

    json = json_loadb((char *) doc->patched + m->value, m->value_len,
                      FUZZ_JSON_FLAGS, &error);
    fuzz_assert(json != NULL);

    return json;
}


size_t
fuzz_image(u_char *dst, const u_char *s, size_t len, ngx_uint_t key)
{
    size_t     i;
    u_char    *p;
    uint32_t   cp;

    p = dst;

    for (i = 0; i < len; /* void */) {

        if (s[i] == 0xed && len - i >= 3 && s[i + 1] >= 0xa0
            && s[i + 1] <= 0xbf && (s[i + 2] & 0xc0) == 0x80)
        {
            cp = 0xd000 | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
            p = fuzz_put_utf8(p, 0xe000 + (cp - 0xd800));
            i += 3;
            continue;
        }

        if (key && s[i] == '\0') {
            p = fuzz_put_utf8(p, 0xe800);
            i++;
            continue;
        }

        *p++ = s[i++];
    }

    return p - dst;
}


ngx_uint_t
fuzz_unimage_key(ngx_str_t *dst, json_t *name)
{
    size_t         i, len;
    u_char        *p;
    uint32_t       cp;
    const u_char  *s;

    s = (const u_char *) json_string_value(name);
    len = json_string_length(name);

    dst->data = malloc(len ? len : 1);
    fuzz_assert(dst->data != NULL);

    p = dst->data;

    for (i = 0; i < len; /* void */) {

        if (s[i] == 0xee && len - i >= 3 && s[i + 1] <= 0xa0) {
            cp = 0xe000 | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);

            if (cp == 0xe800) {
                *p++ = '\0';

            } else if (cp < 0xe800) {
                p = fuzz_put_utf8(p, 0xd800 + (cp - 0xe000));

            } else {
                free(dst->data);
                return 0;
            }

            i += 3;
            continue;
        }

        *p++ = s[i++];
    }

    dst->len = p - dst->data;

    return 1;
}


ngx_uint_t
fuzz_json_is_wtf8(json_t *json, const u_char *s, size_t len)
{
    u_char      *image;
    size_t       n;
    ngx_uint_t   eq;

    if (!json_is_string(json)) {
        return 0;
    }

    image = malloc(3 * len + 1);
    fuzz_assert(image != NULL);

    n = fuzz_image(image, s, len, 0);

    eq = json_string_length(json) == n
         && (n == 0 || ngx_memcmp(json_string_value(json), image, n) == 0);

    free(image);

    return eq;
}


size_t
fuzz_compact(u_char *dst, const u_char *s, size_t len)
{
    size_t      i;
    u_char     *p;
    ngx_uint_t  in_string;

    p = dst;
    in_string = 0;

    for (i = 0; i < len; i++) {

        if (in_string) {
            *p++ = s[i];

            if (s[i] == '\\' && i + 1 < len) {
                *p++ = s[++i];

            } else if (s[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        if (fuzz_is_space(s[i])) {
            continue;
        }

        if (s[i] == '"') {
            in_string = 1;
        }

        *p++ = s[i];
    }

    return p - dst;
}


/* null, false, "", 0 and -0 (NaN is no JSON); the marker is Infinity */

ngx_uint_t
fuzz_js_falsy(json_t *json)
{
    if (json == NULL || json_is_null(json) || json_is_false(json)) {
        return 1;
    }

    if (json_is_string(json)) {
        return json_string_length(json) == 0;
    }

    if (json_is_number(json)) {
        return json_number_value(json) == 0;
    }

    return 0;
}


/*
 * String(value): Array.prototype.join() for arrays, with null (and
 * undefined) as nothing, "[object Object]" for objects.
 */

void
fuzz_js_string(fuzz_buf_t *b, json_t *json)
{
    size_t   i;
    json_t  *item;

    if (json == NULL) {
        fuzz_buf_add(b, "undefined", 9);

    } else if (json_is_string(json)) {
        fuzz_buf_add(b, json_string_value(json), json_string_length(json));

    } else if (json_is_number(json)) {
        fuzz_js_number(b, json_number_value(json));

    } else if (json_is_true(json)) {
        fuzz_buf_add(b, "true", 4);

    } else if (json_is_false(json)) {
        fuzz_buf_add(b, "false", 5);

    } else if (json_is_null(json)) {
        fuzz_buf_add(b, "null", 4);

    } else if (json_is_object(json)) {
        fuzz_buf_add(b, "[object Object]", 15);

    } else {
        json_array_foreach(json, i, item) {
            if (i > 0) {
                fuzz_buf_add(b, ",", 1);
            }

            if (!json_is_null(item)) {
                fuzz_js_string(b, item);
            }
        }
    }
}


/*
 * Number::toString(): the fewest digits that read back as d, the closest
 * such, and the place of the decimal point, laid out.
 */

void
fuzz_js_number(fuzz_buf_t *b, double d)
{
    int   k, n, i, e;
    char  buf[64], digits[32];

    if (d == 0) {
        fuzz_buf_add(b, "0", 1);
        return;
    }

    if (isinf(d) || fabs(d) == FUZZ_JSON_MARKER) {
        if (d < 0) {
            fuzz_buf_add(b, "-", 1);
        }

        fuzz_buf_add(b, "Infinity", 8);
        return;
    }

    if (d < 0) {
        fuzz_buf_add(b, "-", 1);
        d = -d;
    }

    for (k = 1; k <= 17; k++) {
        snprintf(buf, sizeof(buf), "%.*e", k - 1, d);

        if (strtod(buf, NULL) == d) {
            break;
        }
    }

    fuzz_assert(k <= 17);

    /* "d.ddde+xx" */

    digits[0] = buf[0];
    n = 1;

    for (i = 2; i <= k; i++) {
        digits[n++] = buf[i];
    }

    e = atoi(strchr(buf, 'e') + 1);

    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }

    fuzz_js_layout(b, digits, n, e + 1);
}


/* the digits (k) and n, laid out as ECMAScript 262, 6.1.6.1.20, says */

void
fuzz_js_layout(fuzz_buf_t *b, const char *digits, int k, int n)
{
    int   i;
    char  buf[16];

    if (k <= n && n <= 21) {
        fuzz_buf_add(b, digits, k);

        for (i = k; i < n; i++) {
            fuzz_buf_add(b, "0", 1);
        }

    } else if (0 < n && n <= 21) {
        fuzz_buf_add(b, digits, n);
        fuzz_buf_add(b, ".", 1);
        fuzz_buf_add(b, digits + n, k - n);

    } else if (-6 < n && n <= 0) {
        fuzz_buf_add(b, "0.", 2);

        for (i = n; i < 0; i++) {
            fuzz_buf_add(b, "0", 1);
        }

        fuzz_buf_add(b, digits, k);

    } else {
        fuzz_buf_add(b, digits, 1);

        if (k > 1) {
            fuzz_buf_add(b, ".", 1);
            fuzz_buf_add(b, digits + 1, k - 1);
        }

        i = snprintf(buf, sizeof(buf), "e%c%d", n - 1 < 0 ? '-' : '+',
                     abs(n - 1));
        fuzz_buf_add(b, buf, i);
    }
}


void
fuzz_buf_add(fuzz_buf_t *b, const void *data, size_t len)
{
    /* never NULL once added to, even with nothing */
    if (b->data == NULL || b->len + len > b->size) {
        b->size = ngx_max(2 * b->size, b->len + len + 64);
        b->data = realloc(b->data, b->size);
        fuzz_assert(b->data != NULL);
    }

    if (len) {
        ngx_memcpy(b->data + b->len, data, len);
        b->len += len;
    }
}


void
fuzz_buf_free(fuzz_buf_t *b)
{
    free(b->data);
    ngx_memzero(b, sizeof(fuzz_buf_t));
}


u_char *
fuzz_dup(const u_char *data, size_t len)
{
    u_char  *p;

    p = malloc(len ? len : 1);
    fuzz_assert(p != NULL);

    if (len) {
        ngx_memcpy(p, data, len);
    }

    return p;
}

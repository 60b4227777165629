/*
 * Minimal JSON member lookup.  See json.h.
 */

#include <string.h>

#include "json.h"


static size_t
skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'
                     || s[i] == '\r'))
    {
        i++;
    }
    return i;
}


/* s[i] is the opening quote; returns the index of the closing one or n. */
static size_t
skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            i++;

        } else if (s[i] == '"') {
            return i;
        }
    }
    return n;
}


/* Returns the index just past the value starting at s[i], or n on error. */
static size_t
skip_value(const char *s, size_t n, size_t i, json_type_t *type)
{
    int  depth;

    if (i >= n) {
        return n;
    }

    switch (s[i]) {

    case '"':
        *type = JSON_STRING;
        i = skip_string(s, n, i);
        return i < n ? i + 1 : n;

    case '{':
    case '[':
        *type = (s[i] == '{') ? JSON_OBJECT : JSON_ARRAY;
        depth = 0;
        for (; i < n; i++) {
            if (s[i] == '"') {
                i = skip_string(s, n, i);

            } else if (s[i] == '{' || s[i] == '[') {
                depth++;

            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0) {
                    return i + 1;
                }
            }
        }
        return n;

    default:
        *type = (s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))
                ? JSON_NUMBER : JSON_LITERAL;
        while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']'
               && s[i] != ' ' && s[i] != '\n' && s[i] != '\t'
               && s[i] != '\r')
        {
            i++;
        }
        return i;
    }
}


json_type_t
json_get(const char *s, size_t n, const char *key, const char **val,
    size_t *vlen)
{
    size_t       i, ks, ke, vs, ve, klen = strlen(key);
    json_type_t  type;

    i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') {
        return JSON_NONE;
    }
    i++;

    for ( ;; ) {
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != '"') {
            return JSON_NONE;
        }

        ks = i + 1;
        ke = skip_string(s, n, i);
        if (ke >= n) {
            return JSON_NONE;
        }

        i = skip_ws(s, n, ke + 1);
        if (i >= n || s[i] != ':') {
            return JSON_NONE;
        }

        vs = skip_ws(s, n, i + 1);
        ve = skip_value(s, n, vs, &type);
        if (ve >= n || ve == vs) {
            return JSON_NONE;
        }

        if (ke - ks == klen && memcmp(s + ks, key, klen) == 0) {
            if (type == JSON_STRING) {
                *val = s + vs + 1;
                *vlen = ve - vs - 2;

            } else {
                *val = s + vs;
                *vlen = ve - vs;
            }
            return type;
        }

        i = skip_ws(s, n, ve);
        if (i >= n || s[i] != ',') {
            return JSON_NONE;
        }
        i++;
    }
}


int
json_str_eq(const char *s, size_t n, const char *key, const char *want)
{
    const char  *v;
    size_t       vlen;

    return json_get(s, n, key, &v, &vlen) == JSON_STRING
           && vlen == strlen(want) && memcmp(v, want, vlen) == 0;
}


static int
parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t  v = 0;
    size_t    i;

    if (n == 0 || n > 19) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t) (s[i] - '0');
    }

    *out = v;
    return 0;
}


int
json_get_u64(const char *s, size_t n, const char *key, uint64_t *out)
{
    const char   *v;
    size_t        vlen;
    json_type_t   t;

    t = json_get(s, n, key, &v, &vlen);
    if (t != JSON_NUMBER && t != JSON_STRING) {
        return -1;
    }

    return parse_u64(v, vlen, out);
}


int
parse_u64_pair(const char *s, size_t n, uint64_t *a, uint64_t *b)
{
    const char  *colon, *end;

    colon = memchr(s, ':', n);
    if (colon == NULL) {
        return -1;
    }

    if (parse_u64(s, (size_t) (colon - s), a) != 0) {
        return -1;
    }

    /* anything after a second colon is padding */
    n -= (size_t) (colon - s) + 1;
    end = memchr(colon + 1, ':', n);

    return parse_u64(colon + 1, end ? (size_t) (end - colon - 1) : n, b);
}

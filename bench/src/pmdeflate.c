/*
 * permessage-deflate for the client.  See pmdeflate.h.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pmdeflate.h"

#define PMD_WINDOW_BITS   15

/* the parameters of an answer, one bit each */
#define PMD_SERVER_NCT    1
#define PMD_CLIENT_NCT    2
#define PMD_SERVER_BITS   4

/* what Z_SYNC_FLUSH ends with; it is not sent (RFC 7692 7.2.1) */
static const uint8_t  pmd_tail[4] = { 0x00, 0x00, 0xff, 0xff };


static const char *
pmd_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p;
}


/* A token (RFC 7230 tchar run) at p, possibly empty; returns its end. */
static const char *
pmd_token(const char *p, const char *end, size_t *len)
{
    const char  *start = p;

    while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
                       || (*p >= 'A' && *p <= 'Z')
                       || (*p && strchr("!#$%&'*+-.^_`|~", *p) != NULL)))
    {
        p++;
    }

    *len = (size_t) (p - start);
    return p;
}


/* A parameter value: a token or a quoted string (without escapes). */
static const char *
pmd_value(const char *p, const char *end, size_t *len)
{
    const char  *start = p;

    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\') {
                return NULL;
            }
        }

        if (p == end) {
            return NULL;
        }

        *len = (size_t) (++p - start);
        return p;
    }

    p = pmd_token(p, end, len);
    return *len ? p : NULL;
}


static int
pmd_is(const char *s, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(s, name, len) == 0;
}


/* server_max_window_bits: 8..15, no leading zero, maybe quoted. */
static int
pmd_bits_ok(const char *v, size_t len)
{
    if (len >= 2 && v[0] == '"') {
        v++;
        len -= 2;
    }

    return (len == 1 && v[0] >= '8' && v[0] <= '9')
           || (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5');
}


/* 0: empty; 1: permessage-deflate as our offer allows; -1: anything else */
static int
pmd_parse_answer(const char *s, size_t len)
{
    const char  *p, *end = s + len, *name, *val;
    size_t       nlen, vlen;
    int          seen = 0, bit;

    p = pmd_skip_ws(s, end);
    if (p == end) {
        return 0;
    }

    name = p;
    p = pmd_token(p, end, &nlen);
    if (!pmd_is(name, nlen, "permessage-deflate")) {
        return -1;
    }

    for ( ;; ) {
        p = pmd_skip_ws(p, end);
        if (p == end) {
            break;
        }

        if (*p != ';') {
            return -1;          /* a comma: a second extension */
        }

        name = pmd_skip_ws(p + 1, end);
        p = pmd_skip_ws(pmd_token(name, end, &nlen), end);
        val = NULL;
        vlen = 0;

        if (p < end && *p == '=') {
            val = pmd_skip_ws(p + 1, end);
            p = pmd_value(val, end, &vlen);
            if (p == NULL) {
                return -1;
            }
        }

        if (pmd_is(name, nlen, "server_no_context_takeover")) {
            bit = PMD_SERVER_NCT;

        } else if (pmd_is(name, nlen, "client_no_context_takeover")) {
            bit = PMD_CLIENT_NCT;

        } else if (pmd_is(name, nlen, "server_max_window_bits")) {
            bit = PMD_SERVER_BITS;

        } else {
            /* client_max_window_bits was not offered: not allowed */
            return -1;
        }

        if ((seen & bit)
            || (bit == PMD_SERVER_BITS ? val == NULL || !pmd_bits_ok(val, vlen)
                                       : val != NULL))
        {
            return -1;
        }

        seen |= bit;
    }

    /* we offered server_no_context_takeover: accepting it says so */
    return (seen & PMD_SERVER_NCT) ? 1 : -1;
}


int
pmd_check_answer(int offered, const char *value, size_t len, int *accepted)
{
    switch (pmd_parse_answer(value, len)) {

    case 0:
        return 0;

    case 1:
        if (!offered || *accepted) {
            return -1;
        }
        *accepted = 1;
        return 0;

    default:
        return -1;
    }
}


/* Grows d->buf to hold need bytes, doubling, but to most bytes at most. */
static int
pmd_reserve(pmd_stream_t *d, size_t need, size_t most)
{
    size_t    cap;
    uint8_t  *nb;

    if (need <= d->cap) {
        return 0;
    }

    cap = d->cap ? d->cap : 4096;
    while (cap < need) {
        cap *= 2;
    }

    if (cap > most) {
        cap = most;
    }

    nb = realloc(d->buf, cap);
    if (nb == NULL) {
        return -1;
    }

    d->buf = nb;
    d->cap = cap;
    return 0;
}


/*
 * Runs deflate or inflate with Z_SYNC_FLUSH over in[0..len) into d->buf
 * from *have on.  Returns Z_OK once the input is used and the output
 * flushed, Z_STREAM_END at a final block, Z_BUF_ERROR past limit bytes,
 * or zlib's error.
 */
static int
pmd_run(pmd_stream_t *d, int (*step)(z_streamp, int), const void *in,
    size_t len, size_t limit, size_t *have)
{
    int  rc;

    d->zs.next_in = (Bytef *) in;
    d->zs.avail_in = (uInt) len;

    for ( ;; ) {
        if (*have == d->cap && pmd_reserve(d, *have + 1, limit + 1) != 0) {
            return Z_MEM_ERROR;
        }

        d->zs.next_out = d->buf + *have;
        d->zs.avail_out = (uInt) (d->cap - *have);

        rc = step(&d->zs, Z_SYNC_FLUSH);
        *have = d->cap - d->zs.avail_out;

        if (*have > limit) {
            return Z_BUF_ERROR;
        }

        if (rc == Z_STREAM_END) {
            return rc;
        }

        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return rc;
        }

        if (d->zs.avail_out != 0) {
            /* all done, or no progress possible with room left */
            return d->zs.avail_in == 0 ? Z_OK : Z_DATA_ERROR;
        }
    }
}


int
pmd_deflate(pmd_stream_t *d, const void *in, size_t len,
    const uint8_t **out, size_t *out_len)
{
    size_t  have = 0;

    if (!d->ready) {
        memset(&d->zs, 0, sizeof(d->zs));
        if (deflateInit2(&d->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                         -PMD_WINDOW_BITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        {
            return -1;
        }
        d->ready = 1;
        d->inflating = 0;

    } else if (deflateReset(&d->zs) != Z_OK) {
        return -1;
    }

    if (pmd_run(d, deflate, in, len, SIZE_MAX / 2, &have) != Z_OK) {
        return -1;
    }

    if (have >= 4 && memcmp(d->buf + have - 4, pmd_tail, 4) == 0) {
        have -= 4;
    }

    *out = d->buf;
    *out_len = have;
    return 0;
}


int
pmd_inflate(pmd_stream_t *d, const void *in, size_t len, size_t max,
    uint8_t **out, size_t *out_len)
{
    size_t  have = 0;
    int     rc;

    if (!d->ready) {
        memset(&d->zs, 0, sizeof(d->zs));
        if (inflateInit2(&d->zs, -PMD_WINDOW_BITS) != Z_OK) {
            return 1011;
        }
        d->ready = 1;
        d->inflating = 1;

    } else if (inflateReset(&d->zs) != Z_OK) {
        return 1011;
    }

    /*
     * A final block (BFINAL) ends the message: what follows it, such as
     * the 0x00 of RFC 7692 7.2.3.4, is not inflated.
     */
    rc = pmd_run(d, inflate, in, len, max, &have);

    if (rc == Z_OK) {
        rc = pmd_run(d, inflate, pmd_tail, sizeof(pmd_tail), max, &have);
    }

    switch (rc) {

    case Z_OK:
    case Z_STREAM_END:
        *out = d->buf;
        *out_len = have;
        return 0;

    case Z_BUF_ERROR:
        return 1009;

    case Z_MEM_ERROR:
        return 1011;

    default:
        return 1007;
    }
}


void
pmd_free(pmd_stream_t *d)
{
    if (d->ready) {
        if (d->inflating) {
            inflateEnd(&d->zs);

        } else {
            deflateEnd(&d->zs);
        }
    }

    free(d->buf);
    memset(d, 0, sizeof(*d));
}

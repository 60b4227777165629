/*
 * Reconnect and resume.  See resume.h.
 */

#include <stdio.h>
#include <string.h>

#include "resume.h"


static int
parse_digits(const char *s, size_t n, uint64_t *out)
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
msgid_parse(const char *s, size_t n, msgid_t *id)
{
    const char  *dash;

    dash = memchr(s, '-', n);
    if (dash == NULL) {
        id->seq = 0;
        return parse_digits(s, n, &id->ms);
    }

    if (parse_digits(s, (size_t) (dash - s), &id->ms) != 0) {
        return -1;
    }

    return parse_digits(dash + 1, n - (size_t) (dash - s) - 1, &id->seq);
}


int
msgid_cmp(const msgid_t *a, const msgid_t *b)
{
    if (a->ms != b->ms) {
        return a->ms < b->ms ? -1 : 1;
    }

    if (a->seq != b->seq) {
        return a->seq < b->seq ? -1 : 1;
    }

    return 0;
}


id_verdict_t
idtrack_see(idtrack_t *t, const char *s, size_t n)
{
    msgid_t  id;

    if (n >= MSGID_MAX || msgid_parse(s, n, &id) != 0) {
        return ID_BAD;
    }

    if (t->have && msgid_cmp(&id, &t->last) <= 0) {
        return ID_NOT_ABOVE;
    }

    t->last = id;
    t->have = 1;
    memcpy(t->text, s, n);
    t->text[n] = '\0';
    return ID_ABOVE;
}


size_t
resume_register(char *buf, size_t len, const char *uid, const char *since)
{
    int  n;

    if (since) {
        n = snprintf(buf, len, "{\"type\":\"register\",\"userId\":\"%s\","
                     "\"since\":\"%s\"}", uid, since);

    } else {
        n = snprintf(buf, len, "{\"type\":\"register\",\"userId\":\"%s\"}",
                     uid);
    }

    return (n > 0 && (size_t) n < len) ? (size_t) n : 0;
}


const char *
resume_since(const idtrack_t *t, uint64_t received)
{
    if (t->have) {
        return t->text;
    }

    return received == 0 ? "0" : NULL;
}


uint64_t
backoff_ns(double base_s, double max_s, unsigned tries, uint64_t rnd)
{
    double  bound = base_s;

    while (tries-- > 0 && bound < max_s) {
        bound *= 2;
    }

    if (bound > max_s) {
        bound = max_s;
    }

    /* the top 53 bits of rnd as a fraction in [0, 1) */
    return (uint64_t) (bound * 1e9 * ((double) (rnd >> 11)
                                      / 9007199254740992.0));
}


void
timeline_add(timeline_t *t, uint64_t since_start_ns)
{
    uint64_t  i = since_start_ns / TL_BUCKET_NS;

    t->b[i < TL_BUCKETS ? i : TL_BUCKETS - 1]++;
}


void
timeline_merge(timeline_t *dst, const timeline_t *src)
{
    size_t  i;

    for (i = 0; i < TL_BUCKETS; i++) {
        dst->b[i] += src->b[i];
    }
}


size_t
timeline_len(const timeline_t *t)
{
    size_t  n = TL_BUCKETS;

    while (n > 0 && t->b[n - 1] == 0) {
        n--;
    }

    return n;
}


uint64_t
timeline_peak(const timeline_t *t, size_t w, size_t *at)
{
    uint64_t  sum = 0, best = 0;
    size_t    i, n = timeline_len(t);

    *at = 0;

    for (i = 0; i < n; i++) {
        sum += t->b[i];
        if (i >= w) {
            sum -= t->b[i - w];
        }

        if (sum > best) {
            best = sum;
            *at = i + 1 >= w ? i + 1 - w : 0;
        }
    }

    return best;
}

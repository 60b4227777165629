/*
 * Sequence tracking of one message stream.  See stream.h.
 */

#include <stdlib.h>
#include <string.h>

#include "stream.h"


static int
stream_grow(stream_t *s, uint64_t seq)
{
    size_t     words = s->words ? s->words : 64;
    uint64_t  *n;

    while ((uint64_t) words * 64 <= seq) {
        words *= 2;
    }

    n = realloc(s->seen, words * sizeof(uint64_t));
    if (n == NULL) {
        return -1;
    }

    memset(n + s->words, 0, (words - s->words) * sizeof(uint64_t));
    s->seen = n;
    s->words = words;
    return 0;
}


stream_verdict_t
stream_receive(stream_t *s, uint64_t seq)
{
    uint64_t  bit;

    if (seq >= s->next_seq) {
        return ST_BOGUS;
    }

    if ((uint64_t) s->words * 64 <= seq && stream_grow(s, seq) != 0) {
        return ST_BOGUS;
    }

    bit = (uint64_t) 1 << (seq & 63);
    if (s->seen[seq >> 6] & bit) {
        return ST_DUPLICATE;
    }

    s->seen[seq >> 6] |= bit;
    s->unique++;

    if (seq + 1 < s->top) {
        return ST_REORDERED;
    }

    s->top = seq + 1;
    return ST_NEW;
}


uint64_t
stream_missing(const stream_t *s)
{
    return s->next_seq - s->unique;
}


uint64_t
stream_missing_marked(const stream_t *s, const stream_t *marks)
{
    uint64_t  w, bits, seen, n = 0;
    size_t    i;

    for (i = 0; i < marks->words; i++) {
        bits = marks->seen[i];
        seen = i < s->words ? s->seen[i] : 0;
        w = bits & ~seen;
        if ((uint64_t) i * 64 + 64 > s->next_seq) {
            /* only the messages sent */
            w &= s->next_seq > (uint64_t) i * 64
                 ? ((uint64_t) 1 << (s->next_seq - (uint64_t) i * 64)) - 1
                 : 0;
        }
        n += (uint64_t) __builtin_popcountll(w);
    }

    return n;
}


uint64_t
stream_missing_range(const stream_t *s, uint64_t from, uint64_t to)
{
    uint64_t  seq, n = 0;

    if (to > s->next_seq) {
        to = s->next_seq;
    }

    for (seq = from; seq < to; seq++) {
        if ((seq >> 6) >= s->words
            || !(s->seen[seq >> 6] & ((uint64_t) 1 << (seq & 63))))
        {
            n++;
        }
    }

    return n;
}


void
stream_free(stream_t *s)
{
    free(s->seen);
    memset(s, 0, sizeof(*s));
}

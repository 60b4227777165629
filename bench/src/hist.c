/*
 * Log-bucket latency histogram.  See hist.h.
 */

#include <string.h>

#include "hist.h"


void
hist_init(hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}


unsigned
hist_index(uint64_t v)
{
    unsigned  msb, shift;

    if (v >> HIST_MAX_BITS) {
        v = ((uint64_t) 1 << HIST_MAX_BITS) - 1;
    }

    if (v < 2 * HIST_SUB) {
        return (unsigned) v;
    }

    msb = 63 - (unsigned) __builtin_clzll(v);
    shift = msb - HIST_SUB_BITS;

    return (shift + 1) * HIST_SUB
           + (unsigned) ((v >> shift) & (HIST_SUB - 1));
}


uint64_t
hist_bucket_top(unsigned idx)
{
    unsigned  shift, mant;

    if (idx < 2 * HIST_SUB) {
        return idx;
    }

    shift = idx / HIST_SUB - 1;
    mant = idx % HIST_SUB;

    return (((uint64_t) (HIST_SUB + mant)) << shift)
           + (((uint64_t) 1 << shift) - 1);
}


void
hist_record(hist_t *h, uint64_t v)
{
    h->bucket[hist_index(v)]++;
    h->count++;
    h->sum += (double) v;

    if (v < h->min) {
        h->min = v;
    }

    if (v > h->max) {
        h->max = v;
    }
}


void
hist_merge(hist_t *dst, const hist_t *src)
{
    unsigned  i;

    if (src->count == 0) {
        return;
    }

    for (i = 0; i < HIST_BUCKETS; i++) {
        dst->bucket[i] += src->bucket[i];
    }

    dst->count += src->count;
    dst->sum += src->sum;

    if (src->min < dst->min) {
        dst->min = src->min;
    }

    if (src->max > dst->max) {
        dst->max = src->max;
    }
}


uint64_t
hist_percentile(const hist_t *h, double p)
{
    uint64_t  rank, seen = 0, top;
    unsigned  i;

    if (h->count == 0) {
        return 0;
    }

    rank = (uint64_t) ((p / 100.0) * (double) h->count + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > h->count) {
        rank = h->count;
    }

    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            top = hist_bucket_top(i);
            if (top > h->max) {
                top = h->max;
            }
            if (top < h->min) {
                top = h->min;
            }
            return top;
        }
    }

    return h->max;
}


double
hist_mean(const hist_t *h)
{
    return h->count ? h->sum / (double) h->count : 0.0;
}

/*
 * Log-bucket latency histogram (HDR style): values below 256 are exact,
 * above that each power of two is split into 128 buckets, so a recorded
 * value is known to within 1/128 (0.8%).  Fixed size, no pointers: it can
 * be copied, merged and sent through a pipe as is.
 */

#ifndef HIST_H
#define HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  7
#define HIST_SUB       (1 << HIST_SUB_BITS)
#define HIST_MAX_BITS  40                        /* about 1100 s in ns */
#define HIST_BUCKETS   ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct {
    uint64_t  count;
    uint64_t  min;
    uint64_t  max;
    double    sum;
    uint64_t  bucket[HIST_BUCKETS];
} hist_t;

void hist_init(hist_t *h);
void hist_record(hist_t *h, uint64_t v);
void hist_merge(hist_t *dst, const hist_t *src);

/* Value at percentile p (0..100): the top of its bucket, capped by max. */
uint64_t hist_percentile(const hist_t *h, double p);
double hist_mean(const hist_t *h);

/* Bucket index of v and the highest value sharing its bucket. */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_top(unsigned idx);

#endif

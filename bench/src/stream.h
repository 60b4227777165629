/*
 * Sequence tracking of one message stream: loss, duplicates, order.
 */

#ifndef STREAM_H
#define STREAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t   next_seq;          /* sequence numbers sent: 0..next_seq-1 */
    uint64_t   unique;            /* distinct ones received */
    uint64_t   top;               /* highest received + 1 */
    uint64_t  *seen;              /* bitmap */
    size_t     words;
} stream_t;

typedef enum {
    ST_NEW = 0,                   /* first receipt, in order */
    ST_REORDERED,                 /* first receipt, after a later one */
    ST_DUPLICATE,
    ST_BOGUS                      /* never sent */
} stream_verdict_t;

stream_verdict_t stream_receive(stream_t *s, uint64_t seq);

/* Messages sent and never received. */
uint64_t stream_missing(const stream_t *s);

/* Those sent, marked in marks and never received. */
uint64_t stream_missing_marked(const stream_t *s, const stream_t *marks);

/* Of the messages from..to-1, those sent and never received. */
uint64_t stream_missing_range(const stream_t *s, uint64_t from, uint64_t to);

void stream_free(stream_t *s);

#endif

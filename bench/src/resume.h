/*
 * Reconnect and resume: message ids ("<ms>-<seq>", Redis stream ids),
 * the highest id a receiver has seen, the register message that resumes
 * from it, the reconnect backoff, and a timeline of events (drops,
 * reconnects) in 100 ms buckets whose peak per second is reported.
 * No sockets here.
 */

#ifndef RESUME_H
#define RESUME_H

#include <stddef.h>
#include <stdint.h>

#define MSGID_MAX       48        /* "<20 digits>-<20 digits>" and a NUL */

typedef struct {
    uint64_t  ms;
    uint64_t  seq;
} msgid_t;

/* "<digits>-<digits>" or "<digits>" (seq 0); 0, or -1 when it is not one. */
int msgid_parse(const char *s, size_t n, msgid_t *id);

/* <0, 0, >0 as a is before, equal to, after b: ms, then seq. */
int msgid_cmp(const msgid_t *a, const msgid_t *b);

/* The highest id seen on one stream, kept as the text to resume from. */
typedef struct {
    msgid_t   last;
    int       have;
    char      text[MSGID_MAX];
} idtrack_t;

typedef enum {
    ID_ABOVE = 0,                 /* above every id seen: now the last one */
    ID_NOT_ABOVE,                 /* equal to or below the last one */
    ID_BAD                        /* not a message id */
} id_verdict_t;

id_verdict_t idtrack_see(idtrack_t *t, const char *s, size_t n);

/*
 * The register message of a connection that comes back: with "since"
 * when since is not NULL.  Returns its length, or 0 when it does not fit.
 */
size_t resume_register(char *buf, size_t len, const char *uid,
    const char *since);

/*
 * The "since" a receiver resumes from: the last id it saw; "0" (all that
 * is kept) when it has received nothing yet; NULL when it has received
 * messages but none had an id (nothing to resume from).
 */
const char *resume_since(const idtrack_t *t, uint64_t received);

/*
 * Reconnect delay in ns after tries failed attempts: uniform in
 * [0, bound) ("full jitter"), the bound base_s doubling with each try up
 * to max_s.  rnd is a random 64-bit number.
 */
uint64_t backoff_ns(double base_s, double max_s, unsigned tries,
    uint64_t rnd);

/*
 * Events in 100 ms buckets from the start of the run; later events go in
 * the last bucket.  Fixed size, no pointers: merged by adding.
 */
#define TL_BUCKET_NS    100000000ULL
#define TL_BUCKETS      18000             /* 30 minutes */

typedef struct {
    uint32_t  b[TL_BUCKETS];
} timeline_t;

void timeline_add(timeline_t *t, uint64_t since_start_ns);
void timeline_merge(timeline_t *dst, const timeline_t *src);

/* Buckets up to the last non-zero one (0 when empty). */
size_t timeline_len(const timeline_t *t);

/*
 * The most events in any window of w consecutive buckets (w = 10: the
 * peak per second, over a sliding second); *at gets the window's first
 * bucket.
 */
uint64_t timeline_peak(const timeline_t *t, size_t w, size_t *at);

#endif

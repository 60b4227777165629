/*
 * permessage-deflate (RFC 7692) for the client: the offer, the check of
 * the server's answer, and whole-message compression.  The offer asks for
 * no context takeover in either direction, so every message is compressed
 * on its own and one stream per thread and direction serves all of that
 * thread's connections.  No sockets here.
 */

#ifndef PMDEFLATE_H
#define PMDEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define PMD_OFFER  "permessage-deflate; client_no_context_takeover; " \
                   "server_no_context_takeover"

/*
 * Checks one Sec-WebSocket-Extensions header of the server's 101 reply:
 * offered says whether the request carried PMD_OFFER; *accepted (0 before
 * the first header) becomes 1 once the server accepted it.  Returns -1
 * when the answer must fail the connection: an extension we did not
 * offer, a second acceptance, a parameter our offer does not allow, or a
 * missing server_no_context_takeover.
 */
int pmd_check_answer(int offered, const char *value, size_t len,
    int *accepted);

typedef struct {
    z_stream   zs;
    int        ready;             /* zs initialised */
    int        inflating;         /* an inflate stream, else deflate */
    uint8_t   *buf;               /* output of the last call */
    size_t     cap;
} pmd_stream_t;

/*
 * Compresses one message (RSV1 is the caller's); *out points into d's
 * buffer until the next call.  Returns 0, or -1 when out of memory.
 */
int pmd_deflate(pmd_stream_t *d, const void *in, size_t len,
    const uint8_t **out, size_t *out_len);

/*
 * Inflates one message that arrived with RSV1.  Returns 0, or the close
 * code the peer deserves: 1009 past max bytes, 1007 for bad data, 1011
 * when out of memory.
 */
int pmd_inflate(pmd_stream_t *d, const void *in, size_t len, size_t max,
    uint8_t **out, size_t *out_len);

void pmd_free(pmd_stream_t *d);

#endif

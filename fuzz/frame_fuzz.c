
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: the frame parser, the UTF-8 validator and the close
 * payload parser.
 *
 * Input: one settings byte, the chunk sizes it announces, then the byte
 * stream a client sends.
 *
 *   settings bit 0      rsv1_allowed
 *   settings bits 1-3   max_message_size, an index into fuzz_max_sizes
 *   settings bits 4-7   number of chunk size bytes that follow (0-15);
 *                       the stream is cut in chunks of these sizes, in
 *                       a cycle (0: a read that brings no bytes)
 *
 * The stream is parsed three times: whole, in the chunks above, and one
 * byte at a time with empty reads in between.  Every chunk sits alone in
 * a buffer of its exact size, so ASan sees any read past "last".  The
 * three runs must agree on every event, on the UTF-8 verdict of every
 * text message and on how the stream ends; every invariant broken on the
 * way aborts.
 */


#include "fuzz.h"
#include "ngx_ws_relay_frame.h"


#define FUZZ_UTF8_INVALID  0
#define FUZZ_UTF8_PREFIX   1
#define FUZZ_UTF8_VALID    2

/* transcript records: a marker byte, then a record type */
#define FUZZ_MARK          0xff


typedef enum {
    FUZZ_WHOLE = 0,
    FUZZ_CHUNKS,
    FUZZ_BYTES
} fuzz_split_e;


typedef struct {
    u_char                       *data;
    size_t                        len;
    size_t                        size;
} fuzz_buf_t;


typedef struct {
    uint64_t                      max_message_size;
    ngx_uint_t                    rsv1_allowed;
} fuzz_conf_t;


typedef struct {
    const fuzz_conf_t            *conf;
    ngx_ws_relay_frame_parser_t   parser;

    /* what was delivered, with the chunking removed */
    fuzz_buf_t                    transcript;

    ngx_int_t                     rc;
    ngx_uint_t                    failed;

    ngx_uint_t                    in_message;
    ngx_uint_t                    opcode;
    ngx_uint_t                    compressed;
    uint64_t                      size;

    /* a text message: checked as it arrives, and kept to check again */
    fuzz_buf_t                    text;
    uint32_t                      utf8_state;
    ngx_uint_t                    utf8_failed;
} fuzz_run_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_run(fuzz_run_t *run, const fuzz_conf_t *conf,
    fuzz_split_e split, const u_char *in, size_t len, const u_char *sizes,
    size_t nsizes);
static void fuzz_feed(fuzz_run_t *run, const u_char *in, size_t len);
static void fuzz_event(fuzz_run_t *run, ngx_ws_relay_frame_event_t *ev,
    u_char *start, u_char *pos);
static void fuzz_data(fuzz_run_t *run, ngx_ws_relay_frame_event_t *ev);
static void fuzz_control(fuzz_run_t *run, ngx_ws_relay_frame_event_t *ev);
static void fuzz_text_end(fuzz_run_t *run, u_char type);
static void fuzz_run_free(fuzz_run_t *run);
static void fuzz_compare(fuzz_run_t *a, fuzz_run_t *b);
static ngx_uint_t fuzz_utf8(const u_char *p, size_t len);
static void fuzz_utf8_split(const u_char *p, size_t len,
    const u_char *sizes, size_t nsizes);
static ngx_uint_t fuzz_close_code_valid(ngx_uint_t code);
static void fuzz_add(fuzz_buf_t *b, const u_char *data, size_t len);
static void fuzz_record(fuzz_buf_t *b, u_char type, ngx_uint_t value);
static void fuzz_escaped(fuzz_buf_t *b, const u_char *data, size_t len);


static const uint64_t  fuzz_max_sizes[8] = {
    0, 1, 7, 125, 126, 1000, 65536, (uint64_t) -1
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t         nsizes, len;
    fuzz_run_t     whole, chunks, bytes;
    fuzz_conf_t    conf;
    const u_char  *sizes, *in;

    if (size == 0) {
        return 0;
    }

    conf.rsv1_allowed = data[0] & 1;
    conf.max_message_size = fuzz_max_sizes[(data[0] >> 1) & 7];

    nsizes = ngx_min((size_t) (data[0] >> 4), size - 1);
    sizes = data + 1;
    in = sizes + nsizes;
    len = size - 1 - nsizes;

    fuzz_run(&whole, &conf, FUZZ_WHOLE, in, len, NULL, 0);
    fuzz_run(&bytes, &conf, FUZZ_BYTES, in, len, NULL, 0);
    fuzz_compare(&whole, &bytes);
    fuzz_run_free(&bytes);

    if (nsizes) {
        fuzz_run(&chunks, &conf, FUZZ_CHUNKS, in, len, sizes, nsizes);
        fuzz_compare(&whole, &chunks);
        fuzz_run_free(&chunks);
    }

    fuzz_run_free(&whole);

    /* the validator alone, on the raw stream */
    fuzz_utf8_split(in, len, sizes, nsizes);

    return 0;
}


static void
fuzz_run(fuzz_run_t *run, const fuzz_conf_t *conf, fuzz_split_e split,
    const u_char *in, size_t len, const u_char *sizes, size_t nsizes)
{
    size_t      off, n, i, total;

    ngx_memzero(run, sizeof(fuzz_run_t));

    run->conf = conf;
    run->rc = NGX_AGAIN;

    ngx_ws_relay_frame_parser_init(&run->parser, conf->max_message_size);
    run->parser.rsv1_allowed = conf->rsv1_allowed;

    switch (split) {

    case FUZZ_WHOLE:
        fuzz_feed(run, in, len);
        break;

    case FUZZ_BYTES:
        for (off = 0; off < len && !run->failed; off++) {
            fuzz_feed(run, in + off, 0);
            fuzz_feed(run, in + off, 1);
        }

        break;

    case FUZZ_CHUNKS:
        total = 0;

        for (i = 0; i < nsizes; i++) {
            total += sizes[i];
        }

        off = 0;

        for (i = 0; off < len && !run->failed; i = (i + 1) % nsizes) {
            n = total ? ngx_min((size_t) sizes[i], len - off) : 1;
            fuzz_feed(run, in + off, n);
            off += n;
        }

        break;
    }

    if (run->in_message && run->opcode == NGX_WS_RELAY_OP_TEXT) {
        fuzz_text_end(run, 'u');
    }

    fuzz_record(&run->transcript, 'R', run->failed ? run->parser.error_code
                                                   : 0);
}


/* one read: the bytes get a buffer of their own, parsed to the end */

static void
fuzz_feed(fuzz_run_t *run, const u_char *in, size_t len)
{
    u_char                      *chunk, *pos, *last, *before;
    ngx_int_t                    rc;
    ngx_ws_relay_frame_event_t   ev;
    static u_char                empty;

    /* a parser that failed is never fed again */
    fuzz_assert(!run->failed);

    chunk = malloc(len);

    if (chunk == NULL) {
        fuzz_assert(len == 0);
        chunk = &empty;
    }

    if (len) {
        ngx_memcpy(chunk, in, len);
    }

    pos = chunk;
    last = chunk + len;

    for ( ;; ) {
        before = pos;
        ngx_memset(&ev, 0xa5, sizeof(ngx_ws_relay_frame_event_t));

        rc = ngx_ws_relay_frame_parse(&run->parser, &pos, last, &ev);

        run->rc = rc;

        if (rc == NGX_AGAIN) {
            fuzz_assert(pos == last);
            break;
        }

        if (rc == NGX_ERROR) {
            fuzz_assert(run->parser.error != NULL);
            fuzz_assert(run->parser.error_code == NGX_WS_RELAY_CLOSE_PROTOCOL
                        || run->parser.error_code
                           == NGX_WS_RELAY_CLOSE_TOO_BIG);
            run->failed = 1;
            break;
        }

        fuzz_assert(rc == NGX_OK);

        /* every event takes at least one byte: no endless loop */
        fuzz_assert(pos > before && pos <= last);

        fuzz_event(run, &ev, chunk, pos);
    }

    if (chunk != &empty) {
        free(chunk);
    }
}


static void
fuzz_event(fuzz_run_t *run, ngx_ws_relay_frame_event_t *ev, u_char *start,
    u_char *pos)
{
    if (ev->type == NGX_WS_RELAY_FRAME_CONTROL) {
        fuzz_assert(ev->data == run->parser.control);
        fuzz_control(run, ev);
        return;
    }

    fuzz_assert(ev->type == NGX_WS_RELAY_FRAME_DATA);

    /* payload unmasked in place: it ends where parsing stopped */
    fuzz_assert(ev->data >= start && ev->data + ev->len == pos);

    fuzz_data(run, ev);
}


static void
fuzz_data(fuzz_run_t *run, ngx_ws_relay_frame_event_t *ev)
{
    ngx_int_t  rc;

    fuzz_assert(ev->opcode == NGX_WS_RELAY_OP_TEXT
                || ev->opcode == NGX_WS_RELAY_OP_BINARY);
    fuzz_assert(!ev->compressed || run->conf->rsv1_allowed);

    if (ev->first) {
        fuzz_assert(!run->in_message);

        run->in_message = 1;
        run->opcode = ev->opcode;
        run->compressed = ev->compressed;
        run->size = 0;

        run->text.len = 0;
        run->utf8_state = 0;
        run->utf8_failed = 0;

        fuzz_record(&run->transcript, 'M', ev->opcode | ev->compressed << 4);

    } else {
        fuzz_assert(run->in_message);
        fuzz_assert(ev->opcode == run->opcode);
        fuzz_assert(ev->compressed == run->compressed);
    }

    run->size += ev->len;
    fuzz_assert(run->size <= run->conf->max_message_size);

    if (ev->len == 0) {
        fuzz_record(&run->transcript, 'Z', 0);
    }

    fuzz_escaped(&run->transcript, ev->data, ev->len);

    if (ev->opcode == NGX_WS_RELAY_OP_TEXT) {
        fuzz_add(&run->text, ev->data, ev->len);

        if (!run->utf8_failed) {
            rc = ngx_ws_relay_utf8_check(&run->utf8_state, ev->data,
                                         ev->len);
            fuzz_assert(rc == NGX_OK || rc == NGX_ERROR);
            run->utf8_failed = (rc == NGX_ERROR);
        }
    }

    if (ev->last) {

        if (ev->opcode == NGX_WS_RELAY_OP_TEXT) {
            fuzz_text_end(run, 'U');
        }

        fuzz_record(&run->transcript, 'E', 0);
        run->in_message = 0;
    }
}


/* the verdict on a text message checked piece by piece equals the whole */

static void
fuzz_text_end(fuzz_run_t *run, u_char type)
{
    ngx_uint_t  verdict;

    if (run->utf8_failed) {
        verdict = FUZZ_UTF8_INVALID;

    } else {
        verdict = ngx_ws_relay_utf8_complete(run->utf8_state)
                  ? FUZZ_UTF8_VALID : FUZZ_UTF8_PREFIX;
    }

    /* an empty message has no buffer: the codec is never given NULL */
    fuzz_assert(verdict == fuzz_utf8(run->text.len ? run->text.data
                                                   : (u_char *) "",
                                     run->text.len));

    fuzz_record(&run->transcript, type, verdict);
}


static void
fuzz_control(fuzz_run_t *run, ngx_ws_relay_frame_event_t *ev)
{
    ngx_int_t    rc;
    ngx_uint_t   code, error_code;
    const char  *error;

    fuzz_assert(ev->opcode == NGX_WS_RELAY_OP_CLOSE
                || ev->opcode == NGX_WS_RELAY_OP_PING
                || ev->opcode == NGX_WS_RELAY_OP_PONG);
    fuzz_assert(ev->len <= NGX_WS_RELAY_MAX_CONTROL);
    fuzz_assert(ev->first && ev->last && !ev->compressed);

    fuzz_record(&run->transcript, 'C', ev->opcode);
    fuzz_escaped(&run->transcript, ev->data, ev->len);

    if (ev->opcode != NGX_WS_RELAY_OP_CLOSE) {
        return;
    }

    code = 0;
    error_code = 0;
    error = NULL;

    rc = ngx_ws_relay_frame_parse_close(ev->data, ev->len, &code,
                                        &error_code, &error);

    if (ev->len == 0) {
        fuzz_assert(rc == NGX_OK && code == NGX_WS_RELAY_CLOSE_NO_STATUS);

    } else if (ev->len == 1) {
        fuzz_assert(rc == NGX_ERROR
                    && error_code == NGX_WS_RELAY_CLOSE_PROTOCOL);

    } else if (!fuzz_close_code_valid((ev->data[0] << 8) | ev->data[1])) {
        fuzz_assert(rc == NGX_ERROR
                    && error_code == NGX_WS_RELAY_CLOSE_PROTOCOL);

    } else if (fuzz_utf8(ev->data + 2, ev->len - 2) != FUZZ_UTF8_VALID) {
        fuzz_assert(rc == NGX_ERROR
                    && error_code == NGX_WS_RELAY_CLOSE_INVALID_DATA);

    } else {
        fuzz_assert(rc == NGX_OK
                    && code == (ngx_uint_t) ((ev->data[0] << 8)
                                             | ev->data[1]));
    }

    fuzz_assert(rc == NGX_OK || error != NULL);

    fuzz_record(&run->transcript, 'K', rc == NGX_OK ? code : error_code);
}


static void
fuzz_run_free(fuzz_run_t *run)
{
    free(run->transcript.data);
    free(run->text.data);
}


static void
fuzz_compare(fuzz_run_t *a, fuzz_run_t *b)
{
    ngx_ws_relay_frame_parser_t  *p, *q;

    fuzz_assert(a->rc == b->rc);
    fuzz_assert(a->failed == b->failed);
    fuzz_assert(a->transcript.len == b->transcript.len);
    fuzz_assert(a->transcript.len == 0
                || memcmp(a->transcript.data, b->transcript.data,
                          a->transcript.len) == 0);

    p = &a->parser;
    q = &b->parser;

    if (a->failed) {
        fuzz_assert(p->error_code == q->error_code);
        return;
    }

    /* both stopped at the same point of the same frame */
    fuzz_assert(p->state == q->state);
    fuzz_assert(p->remaining == q->remaining);
    fuzz_assert(p->need == q->need);
    fuzz_assert(p->mask_index == q->mask_index);
    fuzz_assert(p->message_opcode == q->message_opcode);
    fuzz_assert(p->message_size == q->message_size);
    fuzz_assert(p->control_len == q->control_len);
}


static ngx_uint_t
fuzz_utf8(const u_char *p, size_t len)
{
    uint32_t  state;

    state = 0;

    if (ngx_ws_relay_utf8_check(&state, (u_char *) p, len) != NGX_OK) {
        return FUZZ_UTF8_INVALID;
    }

    return ngx_ws_relay_utf8_complete(state) ? FUZZ_UTF8_VALID
                                             : FUZZ_UTF8_PREFIX;
}


/* the validator fed in the input's chunks and byte by byte: same verdict */

static void
fuzz_utf8_split(const u_char *p, size_t len, const u_char *sizes,
    size_t nsizes)
{
    size_t      off, n, i;
    uint32_t    state;
    ngx_int_t   rc;
    ngx_uint_t  verdict, whole;

    whole = fuzz_utf8(p, len);

    for (n = 0; n <= nsizes; n++) {
        state = 0;
        rc = NGX_OK;

        for (off = 0, i = 0; off < len && rc == NGX_OK; off += i) {
            i = (n < nsizes) ? ngx_min((size_t) sizes[n] + 1, len - off) : 1;
            rc = ngx_ws_relay_utf8_check(&state, (u_char *) p + off, i);
        }

        if (rc != NGX_OK) {
            verdict = FUZZ_UTF8_INVALID;

        } else {
            verdict = ngx_ws_relay_utf8_complete(state) ? FUZZ_UTF8_VALID
                                                        : FUZZ_UTF8_PREFIX;
        }

        fuzz_assert(verdict == whole);
    }
}


/* RFC 6455 7.4 and the IANA registry: the codes a peer may send */

static ngx_uint_t
fuzz_close_code_valid(ngx_uint_t code)
{
    if (code >= 3000 && code <= 4999) {
        return 1;
    }

    switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:
        return 1;
    default:
        return 0;
    }
}


static void
fuzz_add(fuzz_buf_t *b, const u_char *data, size_t len)
{
    u_char  *p;

    if (b->len + len > b->size) {
        b->size = ngx_max(2 * b->size, b->len + len + 256);

        p = realloc(b->data, b->size);
        fuzz_assert(p != NULL);

        b->data = p;
    }

    if (len) {
        ngx_memcpy(b->data + b->len, data, len);
        b->len += len;
    }
}


static void
fuzz_record(fuzz_buf_t *b, u_char type, ngx_uint_t value)
{
    u_char  rec[2 + sizeof(ngx_uint_t)];

    rec[0] = FUZZ_MARK;
    rec[1] = type;
    ngx_memcpy(rec + 2, &value, sizeof(ngx_uint_t));

    fuzz_add(b, rec, sizeof(rec));
}


/* payload bytes, FUZZ_MARK doubled so that no byte passes for a record */

static void
fuzz_escaped(fuzz_buf_t *b, const u_char *data, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        fuzz_add(b, data + i, 1);

        if (data[i] == FUZZ_MARK) {
            fuzz_add(b, data + i, 1);
        }
    }
}


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * Unit tests of the RFC 6455 frame codec.  Every input is parsed whole,
 * one byte at a time (with empty reads in between), in chunks of fixed
 * sizes, split at every point and, when short, at every pair of points:
 * each way must give the same events.  The output is TAP, closed by a
 * line "N passed, N failed"; the exit status is 1 when a test failed.
 */


#include "tap.h"
#include "ngx_ws_relay_frame.h"


#define TEST_TIMEOUT        120     /* seconds: a parser that loops fails */
#define TEST_SPLIT_ALL      4096    /* inputs split at every point */
#define TEST_SPLIT_PAIRS    48      /* inputs split at every two points */
#define TEST_SPLIT_EDGE     32      /* longer inputs: points near the ends */

#define TEST_LEN_SHORTEST   0
#define TEST_LEN_16         16
#define TEST_LEN_64         64

#define TEST_UTF8_INVALID   0
#define TEST_UTF8_PREFIX    1       /* valid, but ends inside a character */
#define TEST_UTF8_VALID     2

#define TEST_STR(s)         (u_char *) (s), (sizeof(s) - 1)


typedef struct {
    u_char                       *data;
    size_t                        len;
    size_t                        size;
} test_buf_t;


typedef struct {
    uint64_t                      max_message_size;
    ngx_uint_t                    rsv1_allowed;
    /* offset of every chunk in its own buffer, to vary the alignment */
    ngx_uint_t                    align;
} test_conf_t;


typedef struct {
    /* events with the chunking removed: must not depend on the split */
    test_buf_t                    log;
    /* one entry per event, as delivered */
    test_buf_t                    trace;
    ngx_uint_t                    empty_events;
    ngx_int_t                     rc;
    ngx_uint_t                    error_code;

    ngx_uint_t                    in_message;
    ngx_uint_t                    message_opcode;
    ngx_uint_t                    message_compressed;
    uint64_t                      message_size;
} test_result_t;


static void buf_add(test_buf_t *b, const void *data, size_t len);
static void buf_byte(test_buf_t *b, u_char c);
static void buf_str(test_buf_t *b, const char *s);
static void buf_reset(test_buf_t *b);
static void buf_free(test_buf_t *b);
static int buf_equal(test_buf_t *a, test_buf_t *b);
static const char *buf_escape(test_buf_t *b, char *out, size_t size);

static void test_key(u_char key[4]);
static void frame_head(test_buf_t *b, u_char b0, ngx_uint_t masked,
    ngx_uint_t form, uint64_t len, u_char key[4]);
static void frame_add_ext(test_buf_t *b, u_char b0, ngx_uint_t masked,
    ngx_uint_t form, const u_char *data, size_t len);
static void frame_add(test_buf_t *b, u_char b0, const u_char *data,
    size_t len);

static const char *opcode_name(ngx_uint_t opcode);
static void log_open(test_buf_t *log, ngx_uint_t opcode,
    ngx_uint_t compressed);
static void log_close(test_buf_t *log);
static void log_message(test_buf_t *log, ngx_uint_t opcode,
    const u_char *data, size_t len);

static void result_reset(test_result_t *r);
static void result_free(test_result_t *r);
static void test_parse(const test_conf_t *cf, const u_char *in, size_t len,
    const size_t *sizes, ngx_uint_t n, test_result_t *r);
static void test_event(const test_conf_t *cf,
    ngx_ws_relay_frame_parser_t *p, ngx_ws_relay_frame_event_t *ev,
    u_char *pos, test_result_t *r);
static void test_compare(const char *how, test_result_t *r,
    test_result_t *whole, test_buf_t *log, ngx_int_t rc, ngx_uint_t code);
static void expect_parse(const test_conf_t *cf, test_buf_t *in,
    test_buf_t *log, ngx_int_t rc, ngx_uint_t code, const char *trace);
static void expect_error(const test_conf_t *cf, test_buf_t *in,
    test_buf_t *log, ngx_uint_t code);

static ngx_uint_t utf8_codec(const u_char *p, size_t len);
static ngx_uint_t utf8_reference(const u_char *p, size_t len);
static void expect_utf8(const u_char *p, size_t len, ngx_uint_t verdict);

static void test_shapes(void);
static void test_lengths(void);
static void test_unmask(void);
static void test_fragments(void);
static void test_zero_length(void);
static void test_sequence(void);
static void test_protocol_errors(void);
static void test_message_size(void);
static void test_parse_close(void);
static void test_utf8_valid(void);
static void test_utf8_invalid(void);
static void test_utf8_truncated(void);
static void test_utf8_exhaustive(void);
static void test_write_header(void);


static test_conf_t   conf_default = { 1024 * 1024, 0, 0 };
static test_conf_t   conf_deflate = { 1024 * 1024, 1, 0 };


int
main(void)
{
    tap_start(TEST_TIMEOUT);

    test_shapes();
    test_lengths();
    test_unmask();
    test_fragments();
    test_zero_length();
    test_sequence();
    test_protocol_errors();
    test_message_size();
    test_parse_close();
    test_utf8_valid();
    test_utf8_invalid();
    test_utf8_truncated();
    test_utf8_exhaustive();
    test_write_header();

    return tap_done();
}


static void
buf_add(test_buf_t *b, const void *data, size_t len)
{
    u_char  *p;

    if (b->len + len > b->size) {
        b->size = ngx_max(2 * b->size, b->len + len + 64);
        p = test_alloc(b->size);

        if (b->len) {
            ngx_memcpy(p, b->data, b->len);
        }

        free(b->data);
        b->data = p;
    }

    if (len) {
        ngx_memcpy(b->data + b->len, data, len);
        b->len += len;
    }
}


static void
buf_byte(test_buf_t *b, u_char c)
{
    buf_add(b, &c, 1);
}


static void
buf_str(test_buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}


static void
buf_reset(test_buf_t *b)
{
    b->len = 0;
}


static void
buf_free(test_buf_t *b)
{
    free(b->data);
    ngx_memzero(b, sizeof(test_buf_t));
}


static int
buf_equal(test_buf_t *a, test_buf_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}


/* a readable, possibly shortened copy of a buffer for the diagnostics */

static const char *
buf_escape(test_buf_t *b, char *out, size_t size)
{
    size_t   i, n;
    u_char   c;

    n = 0;

    for (i = 0; i < b->len && n + 8 < size; i++) {
        c = b->data[i];

        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[n++] = c;

        } else {
            n += snprintf(out + n, size - n, "\\x%02x", c);
        }
    }

    if (i < b->len) {
        n += snprintf(out + n, size - n, "...");
    }

    out[n] = '\0';

    return out;
}


/* a mask key with no zero byte, different for every frame */

static void
test_key(u_char key[4])
{
    ngx_uint_t       i;
    static uint32_t  seed = 0x2545f491;

    for (i = 0; i < 4; i++) {
        seed = seed * 1103515245 + 12345;
        key[i] = (u_char) (seed >> 16);

        if (key[i] == 0) {
            key[i] = 0x5a;
        }
    }
}


static void
frame_head(test_buf_t *b, u_char b0, ngx_uint_t masked, ngx_uint_t form,
    uint64_t len, u_char key[4])
{
    u_char      m;
    ngx_uint_t  i;

    m = masked ? 0x80 : 0;

    buf_byte(b, b0);

    if (form == TEST_LEN_SHORTEST && len < 126) {
        buf_byte(b, (u_char) (m | len));

    } else if (form == TEST_LEN_16
               || (form == TEST_LEN_SHORTEST && len < 65536))
    {
        buf_byte(b, m | 126);
        buf_byte(b, (u_char) (len >> 8));
        buf_byte(b, (u_char) len);

    } else {
        buf_byte(b, m | 127);

        for (i = 8; i > 0; i--) {
            buf_byte(b, (u_char) (len >> ((i - 1) * 8)));
        }
    }

    if (masked) {
        buf_add(b, key, 4);
    }
}


static void
frame_add_ext(test_buf_t *b, u_char b0, ngx_uint_t masked, ngx_uint_t form,
    const u_char *data, size_t len)
{
    u_char  key[4];
    size_t  start, i;

    test_key(key);
    frame_head(b, b0, masked, form, len, key);

    start = b->len;
    buf_add(b, data, len);

    if (masked) {
        for (i = 0; i < len; i++) {
            b->data[start + i] ^= key[i & 3];
        }
    }
}


static void
frame_add(test_buf_t *b, u_char b0, const u_char *data, size_t len)
{
    frame_add_ext(b, b0, 1, TEST_LEN_SHORTEST, data, len);
}


static const char *
opcode_name(ngx_uint_t opcode)
{
    switch (opcode) {
    case NGX_WS_RELAY_OP_CONTINUATION:
        return "continuation";
    case NGX_WS_RELAY_OP_TEXT:
        return "text";
    case NGX_WS_RELAY_OP_BINARY:
        return "binary";
    case NGX_WS_RELAY_OP_CLOSE:
        return "close";
    case NGX_WS_RELAY_OP_PING:
        return "ping";
    case NGX_WS_RELAY_OP_PONG:
        return "pong";
    default:
        return "reserved";
    }
}


/*
 * The log of events: "<text:payload>" for a message or a control frame,
 * "<text+z:" for a compressed one; a control frame inside a fragmented
 * message sits between the fragments' payload.
 */

static void
log_open(test_buf_t *log, ngx_uint_t opcode, ngx_uint_t compressed)
{
    buf_byte(log, '<');
    buf_str(log, opcode_name(opcode));

    if (compressed) {
        buf_str(log, "+z");
    }

    buf_byte(log, ':');
}


static void
log_close(test_buf_t *log)
{
    buf_byte(log, '>');
}


static void
log_message(test_buf_t *log, ngx_uint_t opcode, const u_char *data,
    size_t len)
{
    log_open(log, opcode, 0);
    buf_add(log, data, len);
    log_close(log);
}


static void
result_reset(test_result_t *r)
{
    buf_reset(&r->log);
    buf_reset(&r->trace);

    r->empty_events = 0;
    r->rc = NGX_AGAIN;
    r->error_code = 0;
    r->in_message = 0;
    r->message_opcode = 0;
    r->message_compressed = 0;
    r->message_size = 0;
}


static void
result_free(test_result_t *r)
{
    buf_free(&r->log);
    buf_free(&r->trace);
}


/*
 * Feeds "in" in chunks of the given sizes (zero: a read with no bytes),
 * each copied alone into a buffer of its exact size, and checks every
 * return of the parser.
 */

static void
test_parse(const test_conf_t *cf, const u_char *in, size_t len,
    const size_t *sizes, ngx_uint_t n, test_result_t *r)
{
    u_char                       *chunk, *pos, *last, *before;
    size_t                        off;
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_ws_relay_frame_event_t    ev;
    ngx_ws_relay_frame_parser_t   p;

    result_reset(r);

    ngx_ws_relay_frame_parser_init(&p, cf->max_message_size);
    p.rsv1_allowed = cf->rsv1_allowed;

    off = 0;
    rc = NGX_AGAIN;

    for (i = 0; i < n && rc == NGX_AGAIN; i++) {

        chunk = test_alloc(cf->align + sizes[i]);
        pos = chunk + cf->align;
        last = pos + sizes[i];

        if (sizes[i]) {
            ngx_memcpy(pos, in + off, sizes[i]);
        }

        off += sizes[i];

        for ( ;; ) {
            before = pos;
            ngx_memzero(&ev, sizeof(ngx_ws_relay_frame_event_t));

            rc = ngx_ws_relay_frame_parse(&p, &pos, last, &ev);

            if (rc == NGX_AGAIN) {
                check(pos == last, "NGX_AGAIN with %ld bytes left",
                      (long) (last - pos));
                break;
            }

            if (rc == NGX_ERROR) {
                check(p.error != NULL, "NGX_ERROR without a reason");
                r->error_code = p.error_code;
                break;
            }

            if (rc != NGX_OK) {
                check(0, "unexpected return code %ld", (long) rc);
                break;
            }

            check(pos > before && pos <= last,
                  "NGX_OK consumed %ld bytes of %ld",
                  (long) (pos - before), (long) (last - before));

            test_event(cf, &p, &ev, pos, r);
        }

        free(chunk);
    }

    check(rc != NGX_AGAIN || off == len, "input not consumed");

    r->rc = rc;
}


static void
test_event(const test_conf_t *cf, ngx_ws_relay_frame_parser_t *p,
    ngx_ws_relay_frame_event_t *ev, u_char *pos, test_result_t *r)
{
    char  trace[128];

    if (ev->type == NGX_WS_RELAY_FRAME_CONTROL) {
        check(ev->opcode == NGX_WS_RELAY_OP_CLOSE
              || ev->opcode == NGX_WS_RELAY_OP_PING
              || ev->opcode == NGX_WS_RELAY_OP_PONG,
              "control event with opcode %lu", (unsigned long) ev->opcode);
        check(ev->len <= NGX_WS_RELAY_MAX_CONTROL,
              "control event of %lu bytes", (unsigned long) ev->len);
        check(ev->first && ev->last && !ev->compressed,
              "control event flags first %d last %d compressed %d",
              ev->first, ev->last, ev->compressed);
        check(ev->data == p->control, "control data not in the parser");

        log_message(&r->log, ev->opcode, ev->data, ev->len);

        snprintf(trace, sizeof(trace), "%s %zu;", opcode_name(ev->opcode),
                 ev->len);
        buf_str(&r->trace, trace);
        return;
    }

    check(ev->type == NGX_WS_RELAY_FRAME_DATA, "event type %d", ev->type);
    check(ev->data + ev->len == pos,
          "data event does not end where parsing stopped");
    check(ev->opcode == NGX_WS_RELAY_OP_TEXT
          || ev->opcode == NGX_WS_RELAY_OP_BINARY,
          "data event with opcode %lu", (unsigned long) ev->opcode);
    check(!ev->compressed || cf->rsv1_allowed,
          "compressed message without rsv1_allowed");

    if (ev->first) {
        check(!r->in_message, "first flag inside a message");

        r->in_message = 1;
        r->message_opcode = ev->opcode;
        r->message_compressed = ev->compressed;
        r->message_size = 0;

        log_open(&r->log, ev->opcode, ev->compressed);

    } else {
        check(r->in_message, "data event outside a message");
        check(ev->opcode == r->message_opcode,
              "message opcode changed from %lu to %lu",
              (unsigned long) r->message_opcode,
              (unsigned long) ev->opcode);
        check(ev->compressed == r->message_compressed,
              "compressed flag changed inside a message");
    }

    r->message_size += ev->len;

    check(r->message_size <= cf->max_message_size,
          "message of %llu bytes delivered, max %llu",
          (unsigned long long) r->message_size,
          (unsigned long long) cf->max_message_size);

    buf_add(&r->log, ev->data, ev->len);

    if (ev->len == 0) {
        r->empty_events++;
    }

    if (ev->last) {
        log_close(&r->log);
        r->in_message = 0;
    }

    snprintf(trace, sizeof(trace), "%s%s%s%s %zu;", opcode_name(ev->opcode),
             ev->first ? " first" : "", ev->last ? " last" : "",
             ev->compressed ? " z" : "", ev->len);
    buf_str(&r->trace, trace);
}


static void
test_compare(const char *how, test_result_t *r, test_result_t *whole,
    test_buf_t *log, ngx_int_t rc, ngx_uint_t code)
{
    char  got[256], expected[256];

    check(r->rc == rc, "%s: returned %ld, expected %ld",
          how, (long) r->rc, (long) rc);

    if (rc == NGX_ERROR) {
        check(r->error_code == code, "%s: close code %lu, expected %lu",
              how, (unsigned long) r->error_code, (unsigned long) code);
    }

    check(buf_equal(&r->log, log), "%s: events \"%s\", expected \"%s\"", how,
          buf_escape(&r->log, got, sizeof(got)),
          buf_escape(log, expected, sizeof(expected)));

    check(r->empty_events == whole->empty_events,
          "%s: %lu empty data events, whole input gave %lu", how,
          (unsigned long) r->empty_events,
          (unsigned long) whole->empty_events);
}


/*
 * Parses "in" every way and compares the events with "log", the result
 * with rc and code; "trace" (or NULL) is what the whole input delivers.
 */

static void
expect_parse(const test_conf_t *cf, test_buf_t *in, test_buf_t *log,
    ngx_int_t rc, ngx_uint_t code, const char *trace)
{
    char            how[64], got[256];
    size_t          len, i, j, k, step, *sizes;
    test_result_t   whole, r;

    len = in->len;
    sizes = test_alloc((2 * len + 3) * sizeof(size_t));

    ngx_memzero(&whole, sizeof(test_result_t));
    ngx_memzero(&r, sizeof(test_result_t));

    sizes[0] = len;
    test_parse(cf, in->data, len, sizes, 1, &whole);
    test_compare("whole", &whole, &whole, log, rc, code);

    if (trace) {
        check(whole.trace.len == strlen(trace)
              && memcmp(whole.trace.data, trace, whole.trace.len) == 0,
              "whole: delivered \"%s\", expected \"%s\"",
              buf_escape(&whole.trace, got, sizeof(got)), trace);
    }

    /* one byte at a time, with a read of nothing before each byte */

    for (i = 0; i < len; i++) {
        sizes[2 * i] = 0;
        sizes[2 * i + 1] = 1;
    }

    sizes[2 * len] = 0;
    test_parse(cf, in->data, len, sizes, 2 * len + 1, &r);
    test_compare("byte by byte", &r, &whole, log, rc, code);

    for (k = 2; k <= 17; k++) {
        for (i = 0, j = 0; j < len; i++, j += k) {
            sizes[i] = ngx_min(k, len - j);
        }

        snprintf(how, sizeof(how), "chunks of %zu", k);
        test_parse(cf, in->data, len, sizes, i, &r);
        test_compare(how, &r, &whole, log, rc, code);
    }

    step = (len <= TEST_SPLIT_ALL) ? 1 : len / 61;

    for (i = 0; i <= len; i++) {

        if (len > TEST_SPLIT_ALL
            && i > TEST_SPLIT_EDGE && i < len - TEST_SPLIT_EDGE
            && i % step)
        {
            continue;
        }

        sizes[0] = i;
        sizes[1] = len - i;

        snprintf(how, sizeof(how), "split at %zu", i);
        test_parse(cf, in->data, len, sizes, 2, &r);
        test_compare(how, &r, &whole, log, rc, code);
    }

    if (len <= TEST_SPLIT_PAIRS) {
        for (i = 1; i < len; i++) {
            for (j = i; j < len; j++) {
                sizes[0] = i;
                sizes[1] = j - i;
                sizes[2] = len - j;

                snprintf(how, sizeof(how), "split at %zu and %zu", i, j);
                test_parse(cf, in->data, len, sizes, 3, &r);
                test_compare(how, &r, &whole, log, rc, code);
            }
        }
    }

    result_free(&whole);
    result_free(&r);
    free(sizes);
}


static void
expect_error(const test_conf_t *cf, test_buf_t *in, test_buf_t *log,
    ngx_uint_t code)
{
    expect_parse(cf, in, log, NGX_ERROR, code, NULL);
}


static void
test_shapes(void)
{
    u_char      data[65536 + 8];
    size_t      i;
    test_buf_t  in, log;

    static const struct {
        const char  *name;
        u_char       b0;
        size_t       len;
        ngx_uint_t   form;
    } shapes[] = {
        { "text", 0x81, 5, TEST_LEN_SHORTEST },
        { "empty text", 0x81, 0, TEST_LEN_SHORTEST },
        { "binary of 1 byte", 0x82, 1, TEST_LEN_SHORTEST },
        { "text of 125 bytes", 0x81, 125, TEST_LEN_SHORTEST },
        { "binary of 126 bytes, 16-bit length", 0x82, 126,
          TEST_LEN_SHORTEST },
        { "text of 1000 bytes", 0x81, 1000, TEST_LEN_SHORTEST },
        { "binary of 65535 bytes", 0x82, 65535, TEST_LEN_SHORTEST },
        { "binary of 65536 bytes, 64-bit length", 0x82, 65536,
          TEST_LEN_SHORTEST },
        { "text of 5 bytes, 16-bit length", 0x81, 5, TEST_LEN_16 },
        { "text of 5 bytes, 64-bit length", 0x81, 5, TEST_LEN_64 },
        { "ping", 0x89, 4, TEST_LEN_SHORTEST },
        { "empty ping", 0x89, 0, TEST_LEN_SHORTEST },
        { "ping of 125 bytes", 0x89, 125, TEST_LEN_SHORTEST },
        { "ping of 125 bytes, 16-bit length", 0x89, 125, TEST_LEN_16 },
        { "ping of 3 bytes, 64-bit length", 0x89, 3, TEST_LEN_64 },
        { "pong", 0x8a, 7, TEST_LEN_SHORTEST },
        { "empty close", 0x88, 0, TEST_LEN_SHORTEST },
        { "close with a code and a reason", 0x88, 12, TEST_LEN_SHORTEST },
    };

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (u_char) ('a' + i % 26);
    }

    data[0] = 0x03;
    data[1] = 0xe8;

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));

    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        test_begin(shapes[i].name);

        buf_reset(&in);
        buf_reset(&log);

        frame_add_ext(&in, shapes[i].b0, 1, shapes[i].form, data,
                      shapes[i].len);

        log_message(&log, shapes[i].b0 & 0x0f, data, shapes[i].len);

        expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0, NULL);

        test_end();
    }

    test_begin("compressed message with rsv1_allowed");

    buf_reset(&in);
    buf_reset(&log);

    frame_add(&in, 0xc1, TEST_STR("deflated"));
    frame_add(&in, 0x41, TEST_STR("def"));
    frame_add(&in, 0x89, TEST_STR("ping"));
    frame_add(&in, 0x80, TEST_STR("lated"));
    frame_add(&in, 0x82, TEST_STR("plain"));

    log_open(&log, NGX_WS_RELAY_OP_TEXT, 1);
    buf_str(&log, "deflated");
    log_close(&log);
    log_open(&log, NGX_WS_RELAY_OP_TEXT, 1);
    buf_str(&log, "def");
    log_message(&log, NGX_WS_RELAY_OP_PING, TEST_STR("ping"));
    buf_str(&log, "lated");
    log_close(&log);
    log_message(&log, NGX_WS_RELAY_OP_BINARY, TEST_STR("plain"));

    expect_parse(&conf_deflate, &in, &log, NGX_AGAIN, 0,
                 "text first last z 8;text first z 3;ping 4;"
                 "text last z 5;binary first last 5;");

    test_end();

    buf_free(&in);
    buf_free(&log);
}


static void
test_lengths(void)
{
    u_char                       *data, *pos;
    size_t                        i, header;
    ngx_int_t                     rc;
    test_buf_t                    in, log;
    ngx_ws_relay_frame_event_t    ev;
    ngx_ws_relay_frame_parser_t   p;

    static const struct {
        size_t       len;
        ngx_uint_t   form;
        size_t       header;
    } lengths[] = {
        { 0, TEST_LEN_SHORTEST, 2 },
        { 1, TEST_LEN_SHORTEST, 2 },
        { 125, TEST_LEN_SHORTEST, 2 },
        { 126, TEST_LEN_SHORTEST, 4 },
        { 127, TEST_LEN_SHORTEST, 4 },
        { 256, TEST_LEN_SHORTEST, 4 },
        { 65535, TEST_LEN_SHORTEST, 4 },
        { 65536, TEST_LEN_SHORTEST, 10 },
        { 70000, TEST_LEN_SHORTEST, 10 },
        { 0, TEST_LEN_16, 4 },
        { 125, TEST_LEN_16, 4 },
        { 0, TEST_LEN_64, 10 },
        { 126, TEST_LEN_64, 10 },
        { 65535, TEST_LEN_64, 10 },
    };

    data = test_alloc(70000);

    for (i = 0; i < 70000; i++) {
        data[i] = (u_char) (i * 31 + (i >> 8));
    }

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));

    test_begin("7-, 16- and 64-bit lengths");

    for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        buf_reset(&in);
        buf_reset(&log);

        frame_add_ext(&in, 0x82, 1, lengths[i].form, data, lengths[i].len);
        log_message(&log, NGX_WS_RELAY_OP_BINARY, data, lengths[i].len);

        expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0, NULL);

        /* the whole frame in one read: one event right after the header */

        ngx_ws_relay_frame_parser_init(&p, conf_default.max_message_size);

        pos = in.data;
        rc = ngx_ws_relay_frame_parse(&p, &pos, in.data + in.len, &ev);
        header = lengths[i].header + 4;

        check(rc == NGX_OK && ev.data == in.data + header
              && ev.len == lengths[i].len && ev.first && ev.last
              && pos == in.data + in.len,
              "length %lu: rc %ld, payload at %ld of %lu bytes, "
              "expected at %lu", (unsigned long) lengths[i].len, (long) rc,
              (long) (ev.data - in.data), (unsigned long) ev.len,
              (unsigned long) header);
    }

    test_end();

    buf_free(&in);
    buf_free(&log);
    free(data);
}


static void
test_unmask(void)
{
    u_char         data[4200];
    size_t         len, i, k, n, sizes[4200];
    ngx_uint_t     align;
    test_buf_t     in, log;
    test_conf_t    cf;
    test_result_t  r;

    static const size_t  chunks[] = { 0, 1, 2, 3, 5, 7, 8, 9, 13 };
    static const size_t  big[] = { 255, 256, 1000, 1021, 4096, 4099 };

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));
    ngx_memzero(&r, sizeof(test_result_t));

    cf = conf_default;

    test_begin("unmasking: payloads of many lengths, alignments and splits");

    for (len = 0; len < 100 + sizeof(big) / sizeof(big[0]); len++) {

        n = (len < 100) ? len : big[len - 100];

        for (i = 0; i < n; i++) {
            data[i] = (u_char) (i * 7 + n);
        }

        buf_reset(&in);
        buf_reset(&log);

        frame_add(&in, 0x82, data, n);
        log_message(&log, NGX_WS_RELAY_OP_BINARY, data, n);

        for (align = 0; align < 8; align++) {
            cf.align = align;

            for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {

                if (chunks[k] == 0) {
                    sizes[0] = in.len;
                    i = 1;

                } else {
                    for (i = 0; i * chunks[k] < in.len; i++) {
                        sizes[i] = ngx_min(chunks[k],
                                           in.len - i * chunks[k]);
                    }
                }

                test_parse(&cf, in.data, in.len, sizes, i, &r);

                check(r.rc == NGX_AGAIN && buf_equal(&r.log, &log),
                      "payload of %lu bytes, alignment %lu, chunks of %lu: "
                      "wrong bytes", (unsigned long) n,
                      (unsigned long) align, (unsigned long) chunks[k]);
            }
        }
    }

    test_end();

    buf_free(&in);
    buf_free(&log);
    result_free(&r);
}


static void
test_fragments(void)
{
    test_buf_t  in, log;

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));

    test_begin("fragmented text with a ping and a pong interleaved");

    frame_add(&in, 0x01, TEST_STR("Hel"));
    frame_add(&in, 0x89, TEST_STR("p1"));
    frame_add(&in, 0x00, TEST_STR("lo, "));
    frame_add(&in, 0x8a, NULL, 0);
    frame_add(&in, 0x80, TEST_STR("world"));
    frame_add(&in, 0x82, TEST_STR("\x00\x01"));

    log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
    buf_str(&log, "Hel");
    log_message(&log, NGX_WS_RELAY_OP_PING, TEST_STR("p1"));
    buf_str(&log, "lo, ");
    log_message(&log, NGX_WS_RELAY_OP_PONG, NULL, 0);
    buf_str(&log, "world");
    log_close(&log);
    log_message(&log, NGX_WS_RELAY_OP_BINARY, TEST_STR("\x00\x01"));

    expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0,
                 "text first 3;ping 2;text 4;pong 0;text last 5;"
                 "binary first last 2;");

    test_end();

    test_begin("fragmented binary, 16-bit fragment, close interleaved");

    buf_reset(&in);
    buf_reset(&log);

    frame_add(&in, 0x02, TEST_STR("0123456789"));
    frame_add_ext(&in, 0x00, 1, TEST_LEN_16, TEST_STR("abc"));
    frame_add(&in, 0x88, TEST_STR("\x03\xe8" "bye"));
    frame_add_ext(&in, 0x00, 1, TEST_LEN_64, TEST_STR("de"));
    frame_add(&in, 0x80, TEST_STR("f"));
    frame_add(&in, 0x81, TEST_STR("next"));

    log_open(&log, NGX_WS_RELAY_OP_BINARY, 0);
    buf_str(&log, "0123456789abc");
    log_message(&log, NGX_WS_RELAY_OP_CLOSE, TEST_STR("\x03\xe8" "bye"));
    buf_str(&log, "def");
    log_close(&log);
    log_message(&log, NGX_WS_RELAY_OP_TEXT, TEST_STR("next"));

    expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0,
                 "binary first 10;binary 3;close 5;binary 2;binary last 1;"
                 "text first last 4;");

    test_end();

    test_begin("message cut inside a fragment waits for more");

    buf_reset(&in);
    buf_reset(&log);

    frame_add(&in, 0x01, TEST_STR("abc"));
    frame_add(&in, 0x80, TEST_STR("defgh"));
    in.len -= 2;

    log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
    buf_str(&log, "abcdef");

    expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0,
                 "text first 3;text 3;");

    test_end();

    buf_free(&in);
    buf_free(&log);
}


static void
test_zero_length(void)
{
    test_buf_t  in, log;

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));

    test_begin("zero-length frames of every opcode");

    frame_add(&in, 0x81, NULL, 0);
    frame_add(&in, 0x82, NULL, 0);
    frame_add(&in, 0x89, NULL, 0);
    frame_add(&in, 0x8a, NULL, 0);
    frame_add(&in, 0x88, NULL, 0);
    frame_add_ext(&in, 0x82, 1, TEST_LEN_16, NULL, 0);
    frame_add_ext(&in, 0x81, 1, TEST_LEN_64, NULL, 0);

    log_message(&log, NGX_WS_RELAY_OP_TEXT, NULL, 0);
    log_message(&log, NGX_WS_RELAY_OP_BINARY, NULL, 0);
    log_message(&log, NGX_WS_RELAY_OP_PING, NULL, 0);
    log_message(&log, NGX_WS_RELAY_OP_PONG, NULL, 0);
    log_message(&log, NGX_WS_RELAY_OP_CLOSE, NULL, 0);
    log_message(&log, NGX_WS_RELAY_OP_BINARY, NULL, 0);
    log_message(&log, NGX_WS_RELAY_OP_TEXT, NULL, 0);

    expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0,
                 "text first last 0;binary first last 0;ping 0;pong 0;"
                 "close 0;binary first last 0;text first last 0;");

    test_end();

    test_begin("fragmented message of zero-length fragments");

    buf_reset(&in);
    buf_reset(&log);

    frame_add(&in, 0x01, NULL, 0);
    frame_add(&in, 0x89, NULL, 0);
    frame_add(&in, 0x00, NULL, 0);
    frame_add(&in, 0x00, TEST_STR("x"));
    frame_add(&in, 0x80, NULL, 0);

    log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
    log_message(&log, NGX_WS_RELAY_OP_PING, NULL, 0);
    buf_str(&log, "x");
    log_close(&log);

    expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0,
                 "text first 0;ping 0;text 0;text 1;text last 0;");

    test_end();

    buf_free(&in);
    buf_free(&log);
}


static void
test_sequence(void)
{
    u_char      data[300];
    size_t      i;
    test_buf_t  in, log;

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));

    test_begin("many frames back to back in one read");

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (u_char) i;
    }

    for (i = 0; i < 40; i++) {

        if (i % 3 == 0) {
            frame_add(&in, 0x89, data, i);
            log_message(&log, NGX_WS_RELAY_OP_PING, data, i);

        } else {
            frame_add(&in, 0x82, data, i * 7);
            log_message(&log, NGX_WS_RELAY_OP_BINARY, data, i * 7);
        }
    }

    expect_parse(&conf_default, &in, &log, NGX_AGAIN, 0, NULL);

    test_end();

    buf_free(&in);
    buf_free(&log);
}


static void
test_protocol_errors(void)
{
    u_char       key[4], b0;
    ngx_uint_t   op;
    test_buf_t   in, log, none;
    test_conf_t  unlimited;

    static const u_char  control[126] = { 0 };

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));
    ngx_memzero(&none, sizeof(test_buf_t));

    unlimited = conf_default;
    unlimited.max_message_size = (uint64_t) -1;

    test_begin("unmasked client frame: 1002");

    frame_add_ext(&in, 0x81, 0, TEST_LEN_SHORTEST, TEST_STR("Hello"));
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    frame_add_ext(&in, 0x89, 0, TEST_LEN_SHORTEST, NULL, 0);
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    /* the mask is checked before the size */
    buf_reset(&in);
    frame_add_ext(&in, 0x82, 0, TEST_LEN_16, TEST_STR("0123456789abcdef"));
    unlimited.max_message_size = 10;
    expect_error(&unlimited, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);
    unlimited.max_message_size = (uint64_t) -1;

    buf_reset(&in);
    frame_add(&in, 0x81, TEST_STR("ok"));
    frame_add_ext(&in, 0x82, 0, TEST_LEN_SHORTEST, TEST_STR("Hello"));
    log_message(&log, NGX_WS_RELAY_OP_TEXT, TEST_STR("ok"));
    expect_error(&conf_default, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);

    test_end();

    test_begin("RSV2 or RSV3 set: 1002");

    for (b0 = 0x10; b0 <= 0x70; b0 += 0x10) {

        if (b0 == 0x40) {
            continue;
        }

        buf_reset(&in);
        frame_add(&in, 0x81 | b0, TEST_STR("x"));
        expect_error(&conf_deflate, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

        buf_reset(&in);
        frame_add(&in, 0x89 | b0, TEST_STR("x"));
        expect_error(&conf_deflate, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);
    }

    test_end();

    test_begin("RSV1 without rsv1_allowed: 1002");

    buf_reset(&in);
    frame_add(&in, 0xc1, TEST_STR("x"));
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    frame_add(&in, 0x42, TEST_STR("x"));
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    test_end();

    test_begin("RSV1 on a control frame: 1002");

    for (op = NGX_WS_RELAY_OP_CLOSE; op <= NGX_WS_RELAY_OP_PONG; op++) {
        buf_reset(&in);
        frame_add(&in, (u_char) (0xc0 | op), NULL, 0);
        expect_error(&conf_deflate, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);
        expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);
    }

    test_end();

    test_begin("RSV1 on a continuation frame: 1002");

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x41, TEST_STR("ab"));
    frame_add(&in, 0xc0, TEST_STR("cd"));
    log_open(&log, NGX_WS_RELAY_OP_TEXT, 1);
    buf_str(&log, "ab");
    expect_error(&conf_deflate, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x01, TEST_STR("ab"));
    frame_add(&in, 0x40, TEST_STR("cd"));
    log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
    buf_str(&log, "ab");
    expect_error(&conf_deflate, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);

    test_end();

    test_begin("reserved opcodes 3-7 and 0xB-0xF: 1002");

    for (op = 3; op <= 0xf; op++) {

        if (op >= NGX_WS_RELAY_OP_CLOSE && op <= NGX_WS_RELAY_OP_PONG) {
            continue;
        }

        buf_reset(&in);
        frame_add(&in, (u_char) (0x80 | op), TEST_STR("x"));
        expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

        buf_reset(&in);
        frame_add(&in, (u_char) op, TEST_STR("x"));
        expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

        /* inside a fragmented message */
        buf_reset(&in);
        buf_reset(&log);
        frame_add(&in, 0x02, TEST_STR("ab"));
        frame_add(&in, (u_char) (0x80 | op), TEST_STR("x"));
        log_open(&log, NGX_WS_RELAY_OP_BINARY, 0);
        buf_str(&log, "ab");
        expect_error(&conf_default, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);
    }

    test_end();

    test_begin("control frame over 125 bytes: 1002");

    for (op = NGX_WS_RELAY_OP_CLOSE; op <= NGX_WS_RELAY_OP_PONG; op++) {
        buf_reset(&in);
        frame_add(&in, (u_char) (0x80 | op), control, 126);
        expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);
    }

    buf_reset(&in);
    test_key(key);
    frame_head(&in, 0x89, 1, TEST_LEN_64, 65536, key);
    expect_error(&unlimited, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    frame_head(&in, 0x8a, 1, TEST_LEN_64, (uint64_t) 1 << 62, key);
    expect_error(&unlimited, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    test_end();

    test_begin("fragmented control frame: 1002");

    for (op = NGX_WS_RELAY_OP_CLOSE; op <= NGX_WS_RELAY_OP_PONG; op++) {
        buf_reset(&in);
        frame_add(&in, (u_char) op, TEST_STR("x"));
        expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

        buf_reset(&in);
        buf_reset(&log);
        frame_add(&in, 0x01, TEST_STR("ab"));
        frame_add(&in, (u_char) op, NULL, 0);
        log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
        buf_str(&log, "ab");
        expect_error(&conf_default, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);
    }

    test_end();

    test_begin("continuation without a start: 1002");

    buf_reset(&in);
    frame_add(&in, 0x80, TEST_STR("x"));
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    frame_add(&in, 0x00, NULL, 0);
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x01, TEST_STR("a"));
    frame_add(&in, 0x80, TEST_STR("b"));
    frame_add(&in, 0x89, TEST_STR("p"));
    frame_add(&in, 0x80, TEST_STR("c"));
    log_message(&log, NGX_WS_RELAY_OP_TEXT, TEST_STR("ab"));
    log_message(&log, NGX_WS_RELAY_OP_PING, TEST_STR("p"));
    expect_error(&conf_default, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);

    test_end();

    test_begin("new data frame inside a fragmented message: 1002");

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x01, TEST_STR("ab"));
    frame_add(&in, 0x81, TEST_STR("cd"));
    log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
    buf_str(&log, "ab");
    expect_error(&conf_default, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x02, TEST_STR("ab"));
    frame_add(&in, 0x89, NULL, 0);
    frame_add(&in, 0x00, TEST_STR("cd"));
    frame_add(&in, 0x01, TEST_STR("ef"));
    log_open(&log, NGX_WS_RELAY_OP_BINARY, 0);
    buf_str(&log, "ab");
    log_message(&log, NGX_WS_RELAY_OP_PING, NULL, 0);
    buf_str(&log, "cd");
    expect_error(&conf_default, &in, &log, NGX_WS_RELAY_CLOSE_PROTOCOL);

    test_end();

    test_begin("64-bit length with the top bit set: 1002");

    buf_reset(&in);
    test_key(key);
    frame_head(&in, 0x82, 1, TEST_LEN_64, (uint64_t) 1 << 63, key);
    expect_error(&unlimited, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    buf_reset(&in);
    frame_head(&in, 0x81, 1, TEST_LEN_64, (uint64_t) -1, key);
    expect_error(&unlimited, &in, &none, NGX_WS_RELAY_CLOSE_PROTOCOL);

    test_end();

    buf_free(&in);
    buf_free(&log);
}


static void
test_message_size(void)
{
    u_char       key[4], data[200];
    size_t       i;
    test_buf_t   in, log, none;
    test_conf_t  cf;

    ngx_memzero(&in, sizeof(test_buf_t));
    ngx_memzero(&log, sizeof(test_buf_t));
    ngx_memzero(&none, sizeof(test_buf_t));
    ngx_memset(data, 'm', sizeof(data));

    cf = conf_default;
    cf.max_message_size = 10;

    test_begin("message of max_message_size bytes, whole or fragmented");

    frame_add(&in, 0x81, TEST_STR("0123456789"));
    frame_add(&in, 0x01, TEST_STR("012345"));
    frame_add(&in, 0x89, data, 125);
    frame_add(&in, 0x00, TEST_STR("678"));
    frame_add(&in, 0x80, TEST_STR("9"));
    frame_add(&in, 0x02, TEST_STR("0123456789"));
    frame_add(&in, 0x80, NULL, 0);

    log_message(&log, NGX_WS_RELAY_OP_TEXT, TEST_STR("0123456789"));
    log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
    buf_str(&log, "012345");
    log_message(&log, NGX_WS_RELAY_OP_PING, data, 125);
    buf_str(&log, "6789");
    log_close(&log);
    log_message(&log, NGX_WS_RELAY_OP_BINARY, TEST_STR("0123456789"));

    expect_parse(&cf, &in, &log, NGX_AGAIN, 0, NULL);

    test_end();

    test_begin("message over max_message_size: 1009");

    buf_reset(&in);
    frame_add(&in, 0x81, TEST_STR("0123456789a"));
    expect_error(&cf, &in, &none, NGX_WS_RELAY_CLOSE_TOO_BIG);

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x01, TEST_STR("012345"));
    frame_add(&in, 0x89, TEST_STR("ping"));
    frame_add(&in, 0x80, TEST_STR("6789a"));
    log_open(&log, NGX_WS_RELAY_OP_TEXT, 0);
    buf_str(&log, "012345");
    log_message(&log, NGX_WS_RELAY_OP_PING, TEST_STR("ping"));
    expect_error(&cf, &in, &log, NGX_WS_RELAY_CLOSE_TOO_BIG);

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x02, TEST_STR("0123456789"));
    frame_add(&in, 0x00, NULL, 0);
    frame_add(&in, 0x00, TEST_STR("x"));
    log_open(&log, NGX_WS_RELAY_OP_BINARY, 0);
    buf_str(&log, "0123456789");
    expect_error(&cf, &in, &log, NGX_WS_RELAY_CLOSE_TOO_BIG);

    /* refused at the header, before any payload */
    buf_reset(&in);
    test_key(key);
    frame_head(&in, 0x82, 1, TEST_LEN_64, (uint64_t) 1 << 40, key);
    expect_error(&conf_default, &in, &none, NGX_WS_RELAY_CLOSE_TOO_BIG);

    cf.max_message_size = 0;

    buf_reset(&in);
    buf_reset(&log);
    frame_add(&in, 0x81, NULL, 0);
    frame_add(&in, 0x89, TEST_STR("ping"));
    frame_add(&in, 0x82, TEST_STR("x"));
    log_message(&log, NGX_WS_RELAY_OP_TEXT, NULL, 0);
    log_message(&log, NGX_WS_RELAY_OP_PING, TEST_STR("ping"));
    expect_error(&cf, &in, &log, NGX_WS_RELAY_CLOSE_TOO_BIG);

    test_end();

    test_begin("the largest length allowed waits for its payload");

    cf.max_message_size = (uint64_t) -1;

    buf_reset(&in);
    buf_reset(&log);
    frame_head(&in, 0x82, 1, TEST_LEN_64, ((uint64_t) 1 << 63) - 1, key);
    buf_add(&in, data, 100);
    log_open(&log, NGX_WS_RELAY_OP_BINARY, 0);

    for (i = 0; i < 100; i++) {
        buf_byte(&log, data[i] ^ key[i & 3]);
    }

    expect_parse(&cf, &in, &log, NGX_AGAIN, 0, NULL);

    test_end();

    buf_free(&in);
    buf_free(&log);
}


static void
test_parse_close(void)
{
    u_char       data[128];
    size_t       i, len;
    ngx_int_t    rc;
    ngx_uint_t   code, error_code;
    const char  *error;

    static const ngx_uint_t  invalid[] = {
        0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
        65535
    };

    static const ngx_uint_t  valid[] = {
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
        1014, 3000, 3999, 4000, 4999
    };

    static const struct {
        const char  *reason;
        ngx_uint_t   valid;
    } reasons[] = {
        { "", 1 },
        { "normal closure", 1 },
        { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1 },
        { "\xf0\x9f\x98\x80", 1 },
        { "\xc0\xaf", 0 },
        { "ok\xe2\x82", 0 },
        { "\xed\xa0\x80", 0 },
        { "\xff", 0 },
        { "\x80", 0 },
    };

    test_begin("parse_close: empty payload is 1005");

    code = 0;
    rc = ngx_ws_relay_frame_parse_close(data, 0, &code, &error_code, &error);
    check(rc == NGX_OK && code == NGX_WS_RELAY_CLOSE_NO_STATUS,
          "rc %ld code %lu", (long) rc, (unsigned long) code);

    test_end();

    test_begin("parse_close: 1-byte payload is 1002");

    /* the byte after the payload would make it a valid 1000 */
    data[0] = 0x03;
    data[1] = 0xe8;
    error_code = 0;
    error = NULL;
    rc = ngx_ws_relay_frame_parse_close(data, 1, &code, &error_code, &error);
    check(rc == NGX_ERROR && error_code == NGX_WS_RELAY_CLOSE_PROTOCOL
          && error != NULL,
          "rc %ld error code %lu", (long) rc, (unsigned long) error_code);

    test_end();

    test_begin("parse_close: invalid codes are 1002");

    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        data[0] = (u_char) (invalid[i] >> 8);
        data[1] = (u_char) invalid[i];
        error_code = 0;
        error = NULL;

        rc = ngx_ws_relay_frame_parse_close(data, 2, &code, &error_code,
                                            &error);
        check(rc == NGX_ERROR && error_code == NGX_WS_RELAY_CLOSE_PROTOCOL
              && error != NULL,
              "code %lu: rc %ld error code %lu", (unsigned long) invalid[i],
              (long) rc, (unsigned long) error_code);

        /* a valid reason does not save it */
        ngx_memcpy(data + 2, "bye", 3);
        rc = ngx_ws_relay_frame_parse_close(data, 5, &code, &error_code,
                                            &error);
        check(rc == NGX_ERROR && error_code == NGX_WS_RELAY_CLOSE_PROTOCOL,
              "code %lu with a reason: rc %ld error code %lu",
              (unsigned long) invalid[i], (long) rc,
              (unsigned long) error_code);
    }

    test_end();

    test_begin("parse_close: valid codes, with and without a reason");

    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        data[0] = (u_char) (valid[i] >> 8);
        data[1] = (u_char) valid[i];
        code = 0;

        rc = ngx_ws_relay_frame_parse_close(data, 2, &code, &error_code,
                                            &error);
        check(rc == NGX_OK && code == valid[i], "code %lu: rc %ld code %lu",
              (unsigned long) valid[i], (long) rc, (unsigned long) code);

        ngx_memset(data + 2, 'r', 123);
        code = 0;

        rc = ngx_ws_relay_frame_parse_close(data, 125, &code, &error_code,
                                            &error);
        check(rc == NGX_OK && code == valid[i],
              "code %lu with 123-byte reason: rc %ld code %lu",
              (unsigned long) valid[i], (long) rc, (unsigned long) code);
    }

    test_end();

    test_begin("parse_close: reason must be UTF-8, else 1007");

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        len = strlen(reasons[i].reason);

        data[0] = 0x03;
        data[1] = 0xe8;
        ngx_memcpy(data + 2, reasons[i].reason, len);
        code = 0;
        error_code = 0;

        rc = ngx_ws_relay_frame_parse_close(data, len + 2, &code,
                                            &error_code, &error);

        if (reasons[i].valid) {
            check(rc == NGX_OK && code == NGX_WS_RELAY_CLOSE_NORMAL,
                  "reason %lu: rc %ld code %lu", (unsigned long) i,
                  (long) rc, (unsigned long) code);

        } else {
            check(rc == NGX_ERROR
                  && error_code == NGX_WS_RELAY_CLOSE_INVALID_DATA,
                  "reason %lu: rc %ld error code %lu", (unsigned long) i,
                  (long) rc, (unsigned long) error_code);
        }
    }

    test_end();
}


/* the validator's verdict on one buffer checked in one call */

static ngx_uint_t
utf8_codec(const u_char *p, size_t len)
{
    uint32_t  state;

    state = 0;

    if (ngx_ws_relay_utf8_check(&state, (u_char *) p, len) != NGX_OK) {
        return TEST_UTF8_INVALID;
    }

    return ngx_ws_relay_utf8_complete(state) ? TEST_UTF8_VALID
                                             : TEST_UTF8_PREFIX;
}


/*
 * A plain decoder of RFC 3629 to compare with: a sequence cut short is
 * a prefix only if some continuation would make it a valid character.
 */

static ngx_uint_t
utf8_reference(const u_char *p, size_t len)
{
    size_t      i, n, k;
    uint32_t    cp, lo, hi, min;

    i = 0;

    while (i < len) {

        if (p[i] < 0x80) {
            i++;
            continue;
        }

        if ((p[i] & 0xe0) == 0xc0) {
            n = 2;
            cp = p[i] & 0x1f;
            min = 0x80;

        } else if ((p[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = p[i] & 0x0f;
            min = 0x800;

        } else if ((p[i] & 0xf8) == 0xf0) {
            n = 4;
            cp = p[i] & 0x07;
            min = 0x10000;

        } else {
            return TEST_UTF8_INVALID;
        }

        for (k = 1; k < n && i + k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return TEST_UTF8_INVALID;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        /* the code points the bytes seen so far can still become */

        lo = cp << (6 * (n - k));
        hi = lo | ((1u << (6 * (n - k))) - 1);

        if (hi < min || lo > 0x10ffff
            || (lo >= 0xd800 && hi <= 0xdfff))
        {
            return TEST_UTF8_INVALID;
        }

        if (k < n) {
            return TEST_UTF8_PREFIX;
        }

        i += n;
    }

    return TEST_UTF8_VALID;
}


/*
 * Checks p whole, one byte per call, and split in two at every point:
 * each must agree with the expected verdict, and an invalid sequence
 * must be caught by the call holding the first bad byte.
 */

static void
expect_utf8(const u_char *p, size_t len, ngx_uint_t verdict)
{
    size_t     i, bad, k;
    uint32_t   state;
    ngx_int_t  rc;

    check(utf8_codec(p, len) == verdict, "string of %lu bytes: whole "
          "verdict %lu, expected %lu", (unsigned long) len,
          (unsigned long) utf8_codec(p, len), (unsigned long) verdict);

    check(utf8_reference(p, len) == verdict, "string of %lu bytes: the "
          "reference says %lu, expected %lu", (unsigned long) len,
          (unsigned long) utf8_reference(p, len), (unsigned long) verdict);

    /* the first bad byte: the shortest invalid prefix */

    for (bad = 0; bad < len; bad++) {
        if (utf8_codec(p, bad + 1) == TEST_UTF8_INVALID) {
            break;
        }
    }

    state = 0;
    rc = NGX_OK;

    for (i = 0; i < len; i++) {
        rc = ngx_ws_relay_utf8_check(&state, (u_char *) p + i, 1);
        if (rc != NGX_OK) {
            break;
        }
    }

    if (verdict == TEST_UTF8_INVALID) {
        check(rc == NGX_ERROR && i == bad, "byte by byte: failed at %lu, "
              "expected %lu", (unsigned long) i, (unsigned long) bad);

    } else {
        check(rc == NGX_OK
              && ngx_ws_relay_utf8_complete(state)
                 == (verdict == TEST_UTF8_VALID),
              "byte by byte: rc %ld state 0x%lx", (long) rc,
              (unsigned long) state);
    }

    for (k = 0; k <= len; k++) {
        state = 0;

        rc = ngx_ws_relay_utf8_check(&state, (u_char *) p, k);

        if (rc == NGX_OK) {
            rc = ngx_ws_relay_utf8_check(&state, (u_char *) p + k, len - k);
        }

        if (verdict == TEST_UTF8_INVALID) {
            check(rc == NGX_ERROR, "split at %lu: accepted",
                  (unsigned long) k);

        } else {
            check(rc == NGX_OK
                  && ngx_ws_relay_utf8_complete(state)
                     == (verdict == TEST_UTF8_VALID),
                  "split at %lu: rc %ld state 0x%lx", (unsigned long) k,
                  (long) rc, (unsigned long) state);
        }
    }
}


static void
test_utf8_valid(void)
{
    size_t  i;

    static const char  *valid[] = {
        "",
        "plain ASCII \x01\x7f",
        "\xc2\x80",                            /* U+0080 */
        "\xdf\xbf",                            /* U+07FF */
        "\xe0\xa0\x80",                        /* U+0800 */
        "\xed\x9f\xbf",                        /* U+D7FF */
        "\xee\x80\x80",                        /* U+E000 */
        "\xef\xbf\xbf",                        /* U+FFFF */
        "\xf0\x90\x80\x80",                    /* U+10000 */
        "\xf0\x9f\x98\x80",                    /* U+1F600 */
        "\xf3\xbf\xbf\xbf",                    /* U+FFFFF */
        "\xf4\x8f\xbf\xbf",                    /* U+10FFFF */
        "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
        "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1"
            "-UTF-8!!",
        "a\xf0\x9f\x98\x80" "b\xe2\x82\xac" "c\xc2\xa2",
    };

    test_begin("utf8_check: valid multi-byte text, split at every byte");

    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        expect_utf8((u_char *) valid[i], strlen(valid[i]), TEST_UTF8_VALID);
    }

    test_end();
}


static void
test_utf8_invalid(void)
{
    size_t  i;

    static const char  *invalid[] = {
        "\xc0\x80",                /* overlong U+0000 */
        "\xc0\xaf",
        "\xc1\xbf",                /* overlong U+007F */
        "\xe0\x80\x80",            /* overlong 3-byte */
        "\xe0\x9f\xbf",            /* overlong U+07FF */
        "\xf0\x80\x80\x80",        /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf",        /* overlong U+FFFF */
        "\xed\xa0\x80",            /* U+D800 */
        "\xed\xbf\xbf",            /* U+DFFF */
        "\xed\xa0\x80\xed\xb0\x80",    /* a surrogate pair */
        "\xf4\x90\x80\x80",        /* U+110000 */
        "\xf5\x80\x80\x80",
        "\xf7\xbf\xbf\xbf",
        "\xf8\x88\x80\x80\x80",
        "\xfc\x84\x80\x80\x80\x80",
        "\xfe",
        "\xff",
        "\x80",                    /* lone continuation bytes */
        "\xbf",
        "a\x80" "b",
        "\xc2\x80\x80",
        "\xc2" "A",                /* a sequence cut by ASCII */
        "\xe2\x82" "A",
        "\xf0\x9f\x98" "A",
        "\xc2\xc2\x80",
        "valid so far \xce\xba\xe1\xbd\xb9 then \xed\xa0\x80",
    };

    test_begin("utf8_check: overlongs, surrogates, > U+10FFFF, F5+, "
               "stray bytes");

    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        expect_utf8((u_char *) invalid[i], strlen(invalid[i]),
                    TEST_UTF8_INVALID);
    }

    test_end();
}


static void
test_utf8_truncated(void)
{
    size_t    i;
    uint32_t  state;

    static const char  *truncated[] = {
        "\xc2",
        "\xe0",
        "\xe2\x82",
        "\xed",
        "\xed\x9f",
        "\xf0",
        "\xf0\x9f\x98",
        "\xf4\x8f\xbf",
        "text then \xe2\x82",
    };

    test_begin("utf8_check: a truncated sequence leaves the state non-zero");

    for (i = 0; i < sizeof(truncated) / sizeof(truncated[0]); i++) {
        expect_utf8((u_char *) truncated[i], strlen(truncated[i]),
                    TEST_UTF8_PREFIX);
    }

    state = 0;
    check(ngx_ws_relay_utf8_check(&state, TEST_STR("\xe2\x82")) == NGX_OK
          && state != 0, "state 0x%lx after a cut sequence",
          (unsigned long) state);
    check(ngx_ws_relay_utf8_check(&state, TEST_STR("\xac" "ok")) == NGX_OK
          && ngx_ws_relay_utf8_complete(state),
          "state 0x%lx after the end of the sequence",
          (unsigned long) state);

    test_end();
}


/* every string of up to three bytes, and a wide sample of four */

static void
test_utf8_exhaustive(void)
{
    u_char      s[4];
    ngx_uint_t  a, b, c, d, n;

    static const u_char  edge[] = {
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xf4, 0xff
    };

    test_begin("utf8_check agrees with a reference decoder");

    n = 0;

    for (a = 0; a < 256; a++) {
        s[0] = (u_char) a;
        n += (utf8_codec(s, 1) != utf8_reference(s, 1));

        for (b = 0; b < 256; b++) {
            s[1] = (u_char) b;
            n += (utf8_codec(s, 2) != utf8_reference(s, 2));

            for (c = 0; c < 256; c++) {
                s[2] = (u_char) c;
                n += (utf8_codec(s, 3) != utf8_reference(s, 3));

                if (a < 0xe0 || c & 1) {
                    continue;
                }

                for (d = 0; d < sizeof(edge); d++) {
                    s[3] = edge[d];
                    n += (utf8_codec(s, 4) != utf8_reference(s, 4));
                }
            }
        }
    }

    check(n == 0, "%lu strings judged differently", (unsigned long) n);

    test_end();
}


static void
test_write_header(void)
{
    u_char                       *p, *pos, out[16], frame[65536 + 32];
    size_t                        i, len, hlen;
    ngx_int_t                     rc;
    ngx_ws_relay_frame_event_t    ev;
    ngx_ws_relay_frame_parser_t   parser;

    static const struct {
        size_t       len;
        ngx_uint_t   opcode;
        ngx_uint_t   flags;
        size_t       size;
        const char  *header;
    } headers[] = {
        { 0, NGX_WS_RELAY_OP_TEXT, NGX_WS_RELAY_FIN, 2, "\x81\x00" },
        { 125, NGX_WS_RELAY_OP_BINARY, NGX_WS_RELAY_FIN, 2, "\x82\x7d" },
        { 126, NGX_WS_RELAY_OP_TEXT, NGX_WS_RELAY_FIN, 4,
          "\x81\x7e\x00\x7e" },
        { 65535, NGX_WS_RELAY_OP_BINARY,
          NGX_WS_RELAY_FIN | NGX_WS_RELAY_RSV1, 4, "\xc2\x7e\xff\xff" },
        { 65536, NGX_WS_RELAY_OP_TEXT, 0, 10,
          "\x01\x7f\x00\x00\x00\x00\x00\x01\x00\x00" },
        { 0, NGX_WS_RELAY_OP_CLOSE, NGX_WS_RELAY_FIN, 2, "\x88\x00" },
        { 2, NGX_WS_RELAY_OP_PONG, NGX_WS_RELAY_FIN, 2, "\x8a\x02" },
    };

    test_begin("frame_write_header for 0, 125, 126, 65535, 65536 bytes");

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        len = headers[i].len;

        ngx_memset(out, 0xee, sizeof(out));

        p = ngx_ws_relay_frame_write_header(out, headers[i].opcode,
                                            headers[i].flags, len);

        check(ngx_ws_relay_frame_header_size(len) == headers[i].size,
              "length %lu: header_size %lu, expected %lu",
              (unsigned long) len,
              (unsigned long) ngx_ws_relay_frame_header_size(len),
              (unsigned long) headers[i].size);

        check(p == out + headers[i].size
              && memcmp(out, headers[i].header, headers[i].size) == 0
              && out[headers[i].size] == 0xee,
              "length %lu: wrong header bytes", (unsigned long) len);

        /* the header read back by the parser, once masked */

        hlen = p - out;
        ngx_memcpy(frame, out, hlen);
        frame[1] |= 0x80;
        ngx_memzero(frame + hlen, 4 + len);

        ngx_ws_relay_frame_parser_init(&parser, 1024 * 1024);
        parser.rsv1_allowed = 1;

        pos = frame;
        rc = ngx_ws_relay_frame_parse(&parser, &pos, frame + hlen + 4 + len,
                                      &ev);

        check(rc == NGX_OK && ev.opcode == headers[i].opcode
              && ev.len == len
              && (ev.type == NGX_WS_RELAY_FRAME_CONTROL
                  || ev.data == frame + hlen + 4)
              && ev.last == ((headers[i].flags & NGX_WS_RELAY_FIN) != 0)
              && pos == frame + hlen + 4 + len,
              "length %lu: parsed back as rc %ld opcode %lu of %lu bytes",
              (unsigned long) len, (long) rc, (unsigned long) ev.opcode,
              (unsigned long) ev.len);
    }

    check(ngx_ws_relay_frame_header_size(1) == 2
          && ngx_ws_relay_frame_header_size(127) == 4
          && ngx_ws_relay_frame_header_size((size_t) 1 << 31) == 10,
          "header_size of other lengths");

    test_end();
}

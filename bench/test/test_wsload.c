/*
 * Tests of wsload's building blocks: SHA-1, base64, Sec-WebSocket-Accept,
 * the frame codec (RFC 6455 examples, byte-at-a-time parsing, fragments,
 * protocol errors), the JSON lookup, sequence tracking and histogram
 * percentiles.  Correctness only: nothing here is timed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "json.h"
#include "stream.h"
#include "wscodec.h"

static int  passed, failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)


static void
hex(const uint8_t *d, size_t n, char *out)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", d[i]);
    }
}


static void
test_sha1(void)
{
    static const struct {
        const char  *in;
        const char  *out;
    } v[] = {
        { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
        { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
        { "The quick brown fox jumps over the lazy dog",
          "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12" },
    };
    uint8_t  d[20];
    char     h[41], *big;
    size_t   i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        sha1(v[i].in, strlen(v[i].in), d);
        hex(d, 20, h);
        CHECK(strcmp(h, v[i].out) == 0, "sha1(\"%s\") = %s", v[i].in, h);
    }

    /* one million 'a': many blocks */
    big = malloc(1000000);
    memset(big, 'a', 1000000);
    sha1(big, 1000000, d);
    hex(d, 20, h);
    CHECK(strcmp(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0,
          "sha1(a x 1e6) = %s", h);
    free(big);
}


static void
test_base64(void)
{
    static const char  *in[] = { "", "f", "fo", "foo", "foob", "fooba",
                                 "foobar" };
    static const char  *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                  "Zm9vYmE=", "Zm9vYmFy" };
    char                buf[32];
    size_t              i, n;

    for (i = 0; i < 7; i++) {
        n = base64_encode((const uint8_t *) in[i], strlen(in[i]), buf);
        CHECK(strcmp(buf, out[i]) == 0 && n == strlen(out[i]),
              "base64(\"%s\") = \"%s\"", in[i], buf);
    }
}


static void
test_accept(void)
{
    char        out[WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

    ws_accept_for_key(key, strlen(key), out);
    /* RFC 6455 section 1.3 */
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
          "accept(RFC 6455 key) = %s", out);
}


static void
test_encode(void)
{
    /* RFC 6455 5.7: masked "Hello" with key 37 fa 21 3d */
    static const uint8_t  want[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    static const size_t   lens[] = { 0, 1, 125, 126, 127, 65535, 65536,
                                     70000 };
    uint8_t               mk[4] = { 0x37, 0xfa, 0x21, 0x3d };
    uint8_t              *buf, *payload;
    uint32_t              mask;
    ws_frame_t            f;
    size_t                i, j, n, used;
    ws_status_t           rc;

    memcpy(&mask, mk, 4);
    buf = malloc(80000);
    payload = malloc(80000);

    n = ws_frame_encode(buf, WS_OP_TEXT, 1, "Hello", 5, mask);
    CHECK(n == sizeof(want) && memcmp(buf, want, n) == 0,
          "masked Hello matches RFC 6455 5.7");

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (j = 0; j < lens[i]; j++) {
            payload[j] = (uint8_t) (j * 7 + 3);
        }

        n = ws_frame_encode(buf, WS_OP_BINARY, 1, payload, lens[i],
                            0xa1b2c3d4u);
        CHECK(n == ws_frame_size(lens[i]), "size of %zu-byte frame", lens[i]);
        CHECK(buf[1] & 0x80, "client frame of %zu bytes is masked", lens[i]);
        CHECK((lens[i] < 126 && (buf[1] & 0x7f) == lens[i])
              || (lens[i] >= 126 && lens[i] < 65536
                  && (buf[1] & 0x7f) == 126
                  && (size_t) (buf[2] << 8 | buf[3]) == lens[i])
              || (lens[i] >= 65536 && (buf[1] & 0x7f) == 127
                  && buf[2] == 0 && buf[5] == 0
                  && (size_t) (buf[6] << 24 | buf[7] << 16 | buf[8] << 8
                               | buf[9]) == lens[i]),
              "minimal length encoding for %zu bytes", lens[i]);

        rc = ws_frame_parse(buf, n, 1 << 20, &f, &used);
        CHECK(rc == WS_OK && used == n && f.masked && f.len == lens[i]
              && f.opcode == WS_OP_BINARY && f.fin
              && memcmp(f.payload, payload, lens[i]) == 0,
              "round trip of %zu bytes", lens[i]);
    }

    /* a different mask gives different bytes on the wire */
    n = ws_frame_encode(buf, WS_OP_TEXT, 1, "Hello", 5, 0x01020304u);
    CHECK(memcmp(buf + 6, "Hello", 5) != 0, "payload is not sent in clear");

    free(buf);
    free(payload);
}


/* Server frames, RFC 6455 5.7 examples. */
static void
test_parse_examples(void)
{
    uint8_t      hello[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    uint8_t      b256[4 + 256] = { 0x82, 0x7e, 0x01, 0x00 };
    uint8_t     *b64k;
    ws_frame_t   f;
    size_t       used;
    ws_status_t  rc;

    rc = ws_frame_parse(hello, sizeof(hello), 1000, &f, &used);
    CHECK(rc == WS_OK && used == 7 && f.len == 5 && !f.masked
          && f.opcode == WS_OP_TEXT && memcmp(f.payload, "Hello", 5) == 0,
          "unmasked Hello");

    rc = ws_frame_parse(b256, sizeof(b256), 1000, &f, &used);
    CHECK(rc == WS_OK && used == 260 && f.len == 256, "16-bit length");

    b64k = calloc(1, 10 + 65536);
    b64k[0] = 0x82;
    b64k[1] = 0x7f;
    b64k[7] = 0x01;             /* 0x0000000000010000 */
    rc = ws_frame_parse(b64k, 10 + 65536, 1 << 20, &f, &used);
    CHECK(rc == WS_OK && used == 65546 && f.len == 65536, "64-bit length");

    rc = ws_frame_parse(b64k, 10 + 65535, 1 << 20, &f, &used);
    CHECK(rc == WS_AGAIN, "64 KiB frame one byte short is incomplete");

    rc = ws_frame_parse(b64k, 10 + 65536, 1000, &f, &used);
    CHECK(rc == WS_ERR_TOO_BIG, "frame above the limit");

    b64k[2] = 0x80;
    rc = ws_frame_parse(b64k, 10, 1 << 20, &f, &used);
    CHECK(rc == WS_ERR_PROTOCOL, "64-bit length with the top bit set");
    free(b64k);
}


static void
test_parse_errors(void)
{
    static const struct {
        uint8_t      b[4];
        const char  *what;
    } bad[] = {
        { { 0xc1, 0x00 }, "RSV1 without an extension" },
        { { 0xa1, 0x00 }, "RSV2" },
        { { 0x83, 0x00 }, "reserved data opcode 3" },
        { { 0x8b, 0x00 }, "reserved control opcode 0xb" },
        { { 0x09, 0x00 }, "fragmented ping" },
        { { 0x89, 0x7e, 0x00, 0x7e }, "ping longer than 125" },
    };
    ws_frame_t   f;
    size_t       i, used;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(ws_frame_parse((uint8_t *) bad[i].b, 4, 1000, &f, &used)
              == WS_ERR_PROTOCOL, "%s is a protocol error", bad[i].what);
    }
}


/* Appends a server (unmasked) frame. */
static size_t
put_frame(uint8_t *p, int b0, const char *payload)
{
    size_t  n = strlen(payload);

    p[0] = (uint8_t) b0;
    p[1] = (uint8_t) n;
    memcpy(p + 2, payload, n);
    return n + 2;
}


/*
 * A stream holding: "Hel" + ping "p" + "lo" (fragmented text), "abc"
 * (whole), "x","y","z" (three fragments), close 1000.  Fed in chunks of
 * every size from 1 byte up, it must always give the same events.
 */
static void
test_reassembly(void)
{
    uint8_t      stream[256], buf[256];
    size_t       len = 0, chunk, fed, have, off, used;
    ws_reasm_t   r;
    ws_frame_t   f;
    ws_msg_t     m;
    ws_status_t  rc;
    char         log[512];
    int          ok_all = 1;

    len += put_frame(stream + len, 0x01, "Hel");
    len += put_frame(stream + len, 0x89, "p");
    len += put_frame(stream + len, 0x80, "lo");
    len += put_frame(stream + len, 0x81, "abc");
    len += put_frame(stream + len, 0x02, "x");
    len += put_frame(stream + len, 0x00, "y");
    len += put_frame(stream + len, 0x80, "z");
    stream[len++] = 0x88;
    stream[len++] = 0x02;
    stream[len++] = 0x03;
    stream[len++] = 0xe8;

    for (chunk = 1; chunk <= len; chunk++) {
        ws_reasm_init(&r, 1000);
        log[0] = '\0';
        have = 0;

        for (fed = 0; fed < len; ) {
            size_t  take = (len - fed < chunk) ? len - fed : chunk;

            memcpy(buf + have, stream + fed, take);
            have += take;
            fed += take;

            for (off = 0; ; off += used) {
                rc = ws_frame_parse(buf + off, have - off, 1000, &f, &used);
                if (rc != WS_OK) {
                    break;
                }

                switch (ws_reasm_feed(&r, &f, &m)) {
                case WS_EV_MESSAGE:
                    sprintf(log + strlen(log), "M%d:%.*s;", m.opcode,
                            (int) m.len, (char *) m.data);
                    break;
                case WS_EV_CONTROL:
                    sprintf(log + strlen(log), "C%d:%d;", m.opcode,
                            m.opcode == WS_OP_CLOSE
                            ? ws_close_code(m.data, m.len) : (int) m.len);
                    break;
                case WS_EV_ERROR:
                    strcat(log, "E;");
                    break;
                case WS_EV_NONE:
                    break;
                }
            }

            memmove(buf, buf + off, have - off);
            have -= off;
        }

        if (strcmp(log, "C9:1;M1:Hello;M1:abc;M2:xyz;C8:1000;") != 0
            || have != 0)
        {
            ok_all = 0;
            printf("chunk %zu: %s\n", chunk, log);
        }
        ws_reasm_free(&r);
    }

    CHECK(ok_all, "fragmented stream gives the same messages for every "
          "chunk size (1..%zu bytes)", len);
}


static void
test_reassembly_errors(void)
{
    ws_reasm_t  r;
    ws_frame_t  f;
    ws_msg_t    m;
    uint8_t     d[8] = "abcdefg";

    memset(&f, 0, sizeof(f));
    f.payload = d;

    ws_reasm_init(&r, 10);
    f.opcode = WS_OP_CONT;
    f.fin = 1;
    f.len = 1;
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_ERROR && m.close_code == 1002,
          "continuation without a start");

    f.opcode = WS_OP_TEXT;
    f.fin = 0;
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_NONE, "first fragment");
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_ERROR && m.close_code == 1002,
          "new text frame inside a fragmented message");
    ws_reasm_free(&r);

    ws_reasm_init(&r, 10);
    f.opcode = WS_OP_TEXT;
    f.fin = 0;
    f.len = 6;
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_NONE, "6 of 10 bytes");
    f.opcode = WS_OP_CONT;
    f.fin = 1;
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_ERROR && m.close_code == 1009,
          "fragments above the message limit");
    ws_reasm_free(&r);

    CHECK(ws_close_code((const uint8_t *) "", 0) == 1005, "empty close");
    CHECK(ws_close_code((const uint8_t *) "\x03", 1) == -1,
          "one-byte close payload");
    CHECK(ws_close_code((const uint8_t *) "\x03\xf5", 2) == 1013,
          "close 1013");
}


static void
test_utf8(void)
{
    CHECK(ws_utf8_valid((const uint8_t *) "plain", 5), "ASCII");
    CHECK(ws_utf8_valid((const uint8_t *) "\xc3\xa9\xe2\x82\xac"
                        "\xf0\x9f\x98\x80", 9), "2, 3 and 4-byte sequences");
    CHECK(!ws_utf8_valid((const uint8_t *) "\xc0\xaf", 2), "overlong");
    CHECK(!ws_utf8_valid((const uint8_t *) "\xed\xa0\x80", 3), "surrogate");
    CHECK(!ws_utf8_valid((const uint8_t *) "\xe2\x82", 2), "truncated");
    CHECK(!ws_utf8_valid((const uint8_t *) "\xf4\x90\x80\x80", 4),
          "above U+10FFFF");
}


static void
test_json(void)
{
    const char  *m = "{\"type\":\"chat\",\"message\":{\"type\":\"inner\","
                     "\"seq\":7,\"ts\":123},\"text\":\"a \\\"q\\\" b\","
                     " \"n\" : 42 , \"ok\":true, \"arr\":[1,{\"x\":2}],"
                     "\"last\":\"z\"}";
    const char  *v;
    size_t       vlen, n = strlen(m);
    uint64_t     u, a, b;

    CHECK(json_str_eq(m, n, "type", "chat"), "top-level type, not inner");
    CHECK(json_get(m, n, "message", &v, &vlen) == JSON_OBJECT
          && json_get_u64(v, vlen, "seq", &u) == 0 && u == 7
          && json_get_u64(v, vlen, "ts", &u) == 0 && u == 123,
          "nested object members");
    CHECK(json_get(m, n, "text", &v, &vlen) == JSON_STRING && vlen == 9
          && memcmp(v, "a \\\"q\\\" b", 9) == 0,
          "string with escaped quotes");
    CHECK(json_get_u64(m, n, "n", &u) == 0 && u == 42, "spaced number");
    CHECK(json_get(m, n, "ok", &v, &vlen) == JSON_LITERAL && vlen == 4,
          "literal");
    CHECK(json_str_eq(m, n, "last", "z"), "member after an array");
    CHECK(json_get(m, n, "x", &v, &vlen) == JSON_NONE,
          "nested member is not top-level");
    CHECK(json_get("[1]", 3, "a", &v, &vlen) == JSON_NONE, "not an object");
    CHECK(json_get("{\"a\":", 5, "a", &v, &vlen) == JSON_NONE, "truncated");

    CHECK(parse_u64_pair("17:123456789", 12, &a, &b) == 0 && a == 17
          && b == 123456789, "seq:ts");
    CHECK(parse_u64_pair("3:99:xxxx", 9, &a, &b) == 0 && a == 3 && b == 99,
          "seq:ts:padding");
    CHECK(parse_u64_pair("3-99", 4, &a, &b) != 0, "no colon");
    CHECK(parse_u64_pair(":5", 2, &a, &b) != 0, "empty seq");
}


static void
test_stream(void)
{
    stream_t  s;
    uint64_t  i;
    int       ok = 1;

    memset(&s, 0, sizeof(s));
    s.next_seq = 10;

    CHECK(stream_receive(&s, 0) == ST_NEW, "first");
    CHECK(stream_receive(&s, 2) == ST_NEW, "gap is not reordering");
    CHECK(stream_receive(&s, 1) == ST_REORDERED, "late one is reordered");
    CHECK(stream_receive(&s, 1) == ST_DUPLICATE, "duplicate");
    CHECK(stream_receive(&s, 10) == ST_BOGUS, "never sent");
    CHECK(stream_missing(&s) == 7, "7 of 10 missing");

    s.next_seq = 100000;
    for (i = 3; i < 100000; i++) {
        ok &= stream_receive(&s, i) == ST_NEW;
    }
    CHECK(ok && stream_missing(&s) == 0, "bitmap grows to 100000");
    CHECK(stream_receive(&s, 99999) == ST_DUPLICATE, "duplicate at the end");
    stream_free(&s);
}


static void
test_hist(void)
{
    hist_t    h, a, b;
    uint64_t  v, top, i, x = 88172645463325252ULL;
    int       ok = 1;
    double    p;

    hist_init(&h);
    CHECK(hist_percentile(&h, 50) == 0, "empty histogram");

    /* 1..100000 ns: pXX must be XX% of 100000 within the bucket width */
    for (v = 1; v <= 100000; v++) {
        hist_record(&h, v);
    }

    CHECK(h.count == 100000 && h.min == 1 && h.max == 100000,
          "count, min, max");
    CHECK(hist_mean(&h) > 50000.0 && hist_mean(&h) < 50001.0, "mean");

    for (p = 10; p < 100; p += 10) {
        top = hist_percentile(&h, p);
        CHECK(top >= (uint64_t) (p * 1000)
              && top <= (uint64_t) (p * 1000 * (1 + 1.0 / 128) + 1),
              "p%.0f = %llu", p, (unsigned long long) top);
    }

    CHECK(hist_percentile(&h, 100) == 100000, "p100 is the max");
    top = hist_percentile(&h, 99.9);
    CHECK(top >= 99900 && top <= 100000, "p99.9 = %llu",
          (unsigned long long) top);

    /* exact below 256, 1/128 relative precision above */
    for (i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = x >> (24 + (x & 31));
        top = hist_bucket_top(hist_index(v));
        if (v >= ((uint64_t) 1 << HIST_MAX_BITS)) {
            continue;
        }
        if (top < v || (v < 256 && top != v)
            || (double) (top - v) > (double) v / 128.0)
        {
            ok = 0;
        }
        if (hist_index(v) >= HIST_BUCKETS) {
            ok = 0;
        }
    }
    CHECK(ok, "bucket bounds for random values");

    /* merging two halves equals recording all in one */
    hist_init(&a);
    hist_init(&b);
    for (v = 1; v <= 100000; v++) {
        hist_record(v % 2 ? &a : &b, v);
    }
    hist_merge(&a, &b);
    CHECK(a.count == h.count && a.min == h.min && a.max == h.max
          && memcmp(a.bucket, h.bucket, sizeof(h.bucket)) == 0,
          "merge of two threads' histograms");
    CHECK(hist_percentile(&a, 99) == hist_percentile(&h, 99),
          "merged p99");

    /* a single outlier shows in max and p99.9 of 1000, not in p99 */
    hist_init(&h);
    for (v = 0; v < 999; v++) {
        hist_record(&h, 1000);
    }
    hist_record(&h, 5000000);
    CHECK(hist_percentile(&h, 99) <= 1007 && hist_percentile(&h, 99.95)
          >= 4960000 && h.max == 5000000, "outlier placement");
}


int
main(void)
{
    test_sha1();
    test_base64();
    test_accept();
    test_encode();
    test_parse_examples();
    test_parse_errors();
    test_reassembly();
    test_reassembly_errors();
    test_utf8();
    test_json();
    test_stream();
    test_hist();

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

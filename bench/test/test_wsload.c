/*
 * Tests of wsload's building blocks: SHA-1, base64, Sec-WebSocket-Accept,
 * the frame codec (RFC 6455 examples, byte-at-a-time parsing, fragments,
 * protocol errors), permessage-deflate (RFC 7692 examples, round trips,
 * RSV1 rules, the server's answer), the JSON lookup, sequence tracking,
 * histogram percentiles, busy mode's bombs, and what reconnect and resume
 * count (message ids, the register that resumes, the backoff, the
 * timeline of reconnects and its peak).  Correctness only:
 * nothing here is timed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bomb.h"
#include "hist.h"
#include "json.h"
#include "pmdeflate.h"
#include "resume.h"
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
        { { 0xa1, 0x00 }, "RSV2" },
        { { 0x91, 0x00 }, "RSV3" },
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


/* A server frame with a given first byte and payload (any length). */
static size_t
put_frame_n(uint8_t *p, int b0, const uint8_t *payload, size_t n)
{
    size_t  h = 2;

    p[0] = (uint8_t) b0;
    if (n < 126) {
        p[1] = (uint8_t) n;

    } else {
        p[1] = 126;
        p[2] = (uint8_t) (n >> 8);
        p[3] = (uint8_t) n;
        h = 4;
    }

    memcpy(p + h, payload, n);
    return h + n;
}


/* JSON-like text of len bytes, as a chat message might carry. */
static void
json_like(char *buf, size_t len)
{
    size_t  n = 0;
    int     i = 0;
    char    rec[96];
    size_t  rlen;

    while (n < len) {
        rlen = (size_t) snprintf(rec, sizeof(rec),
                                 "{\"id\":%d,\"user\":\"user-%d\",\"state\":"
                                 "\"%s\"},", i * 7919 % 10007, i * 31 % 97,
                                 i % 3 ? "online" : "away");
        if (rlen > len - n) {
            rlen = len - n;
        }
        memcpy(buf + n, rec, rlen);
        n += rlen;
        i++;
    }
}


/* RFC 7692 7.2.3: "Hello" the way zlib and other senders compress it. */
static void
test_deflate_examples(void)
{
    static const uint8_t  hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                      0x00 };
    static const uint8_t  stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 'H',
                                       'e', 'l', 'l', 'o', 0x00 };
    static const uint8_t  final[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                      0x00, 0x00 };
    static const struct {
        const uint8_t  *z;
        size_t          len;
        const char     *what;
    } v[] = {
        { hello, sizeof(hello), "RFC 7692 7.2.3.1" },
        { stored, sizeof(stored), "a stored block (RFC 7692 7.2.3.3)" },
        { final, sizeof(final), "a BFINAL block and its trailing 0x00 "
                                "(RFC 7692 7.2.3.4)" },
        { hello, sizeof(hello), "the message after a BFINAL one" },
    };
    pmd_stream_t          d, in;
    const uint8_t        *z;
    uint8_t              *out;
    size_t                i, zlen, olen;

    memset(&d, 0, sizeof(d));
    memset(&in, 0, sizeof(in));

    CHECK(pmd_deflate(&d, "Hello", 5, &z, &zlen) == 0
          && zlen == sizeof(hello) && memcmp(z, hello, zlen) == 0,
          "deflate(Hello) is RFC 7692 7.2.3.1, 00 00 ff ff stripped");

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        CHECK(pmd_inflate(&in, v[i].z, v[i].len, 100, &out, &olen) == 0
              && olen == 5 && memcmp(out, "Hello", 5) == 0,
              "inflate %s", v[i].what);
    }

    CHECK(pmd_deflate(&d, "", 0, &z, &zlen) == 0
          && pmd_inflate(&in, z, zlen, 100, &out, &olen) == 0 && olen == 0,
          "empty message round trip (%zu bytes compressed)", zlen);

    pmd_free(&d);
    pmd_free(&in);
}


static void
test_deflate_round_trip(void)
{
    static const size_t   sizes[] = { 1, 125, 1024, 70000, 300000 };
    pmd_stream_t          d, in;
    const uint8_t        *z;
    uint8_t              *msg, *out, *first;
    size_t                i, j, zlen, olen, flen;
    uint64_t              x = 88172645463325252ULL;

    memset(&d, 0, sizeof(d));
    memset(&in, 0, sizeof(in));
    msg = malloc(300000);
    first = malloc(400000);

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (sizes[i] == 70000) {
            /* random bytes: compression makes them longer */
            for (j = 0; j < sizes[i]; j++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                msg[j] = (uint8_t) x;
            }

        } else {
            json_like((char *) msg, sizes[i]);
        }

        CHECK(pmd_deflate(&d, msg, sizes[i], &z, &zlen) == 0
              && !(zlen >= 4 && memcmp(z + zlen - 4, "\0\0\xff\xff", 4) == 0),
              "deflate %zu bytes, tail stripped", sizes[i]);
        memcpy(first, z, zlen);
        flen = zlen;

        CHECK(pmd_inflate(&in, first, flen, 1 << 20, &out, &olen) == 0
              && olen == sizes[i] && memcmp(out, msg, olen) == 0,
              "round trip of %zu bytes (%zu compressed)", sizes[i], flen);

        /* with context takeover the second copy would shrink to a match */
        CHECK(pmd_deflate(&d, msg, sizes[i], &z, &zlen) == 0
              && zlen == flen && memcmp(z, first, zlen) == 0,
              "%zu bytes compress alike twice: no context takeover",
              sizes[i]);
    }

    json_like((char *) msg, 1024);
    pmd_deflate(&d, msg, 1024, &z, &zlen);
    CHECK(zlen < 512, "1 KiB of JSON-like text compresses to %zu bytes", zlen);

    free(msg);
    free(first);
    pmd_free(&d);
    pmd_free(&in);
}


static void
test_inflate_errors(void)
{
    static const uint8_t  garbage[] = { 0xff, 0xff, 0xff };
    pmd_stream_t          d, in;
    const uint8_t        *z;
    uint8_t              *zeros, *out;
    size_t                zlen, olen;

    memset(&d, 0, sizeof(d));
    memset(&in, 0, sizeof(in));
    zeros = calloc(1, 1 << 20);

    CHECK(pmd_deflate(&d, zeros, 1 << 20, &z, &zlen) == 0 && zlen < 2048,
          "1 MiB of zeros deflates to %zu bytes", zlen);
    CHECK(pmd_inflate(&in, z, zlen, 65536, &out, &olen) == 1009,
          "a message inflating past the limit gets 1009");
    CHECK(pmd_inflate(&in, z, zlen, 1 << 20, &out, &olen) == 0
          && olen == 1 << 20, "the same message at exactly the limit");
    CHECK(pmd_inflate(&in, garbage, sizeof(garbage), 100, &out, &olen)
          == 1007, "invalid compressed data gets 1007");

    free(zeros);
    pmd_free(&d);
    pmd_free(&in);
}


/* RSV1 on the wire: the encoder sets it, the reassembler enforces RFC
 * 7692 6.1 (first frame of a data message, only when negotiated). */
static void
test_deflate_frames(void)
{
    static const uint8_t  rsv1_ping[] = { 0xc9, 0x00 };
    static const uint8_t  rsv1_cont[] = { 0xc0, 0x00 };
    pmd_stream_t          d, in;
    const uint8_t        *z;
    uint8_t               buf[4096], *out;
    char                  msg[600];
    size_t                zlen, olen, len, off, used, third;
    ws_reasm_t            r;
    ws_frame_t            f;
    ws_msg_t              m;
    ws_event_t            ev = WS_EV_NONE;
    int                   events = 0;

    memset(&d, 0, sizeof(d));
    memset(&in, 0, sizeof(in));
    json_like(msg, sizeof(msg));
    pmd_deflate(&d, msg, sizeof(msg), &z, &zlen);

    /* client frame: masked, RSV1 */
    len = ws_frame_encode(buf, WS_OP_TEXT | WS_RSV1, 1, z, zlen, 0x11223344u);
    CHECK(buf[0] == 0xc1, "compressed client frame starts 0xc1: %02x",
          buf[0]);
    CHECK(ws_frame_parse(buf, len, 1 << 20, &f, &used) == WS_OK && f.rsv1
          && f.opcode == WS_OP_TEXT && f.len == zlen,
          "parser reports RSV1 and the opcode apart");

    ws_reasm_init(&r, 1 << 20);
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_ERROR && m.close_code == 1002,
          "RSV1 without permessage-deflate is 1002");
    ws_reasm_free(&r);

    ws_reasm_init(&r, 1 << 20);
    r.deflate = 1;
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_MESSAGE && m.compressed
          && pmd_inflate(&in, m.data, m.len, 1 << 20, &out, &olen) == 0
          && olen == sizeof(msg) && memcmp(out, msg, olen) == 0,
          "compressed message through encoder, parser, reassembler");

    /* a server message in three fragments, RSV1 on the first only */
    third = zlen / 3;
    len = put_frame_n(buf, 0x41, z, third);
    len += put_frame_n(buf + len, 0x00, z + third, third);
    len += put_frame_n(buf + len, 0x80, z + 2 * third, zlen - 2 * third);

    for (off = 0; off < len; off += used) {
        if (ws_frame_parse(buf + off, len - off, 1 << 20, &f, &used)
            != WS_OK)
        {
            break;
        }
        ev = ws_reasm_feed(&r, &f, &m);
        events++;
    }

    CHECK(off == len && events == 3 && ev == WS_EV_MESSAGE && m.compressed
          && pmd_inflate(&in, m.data, m.len, 1 << 20, &out, &olen) == 0
          && olen == sizeof(msg) && memcmp(out, msg, olen) == 0,
          "fragmented compressed message");

    len = put_frame_n(buf, 0x81, (const uint8_t *) "plain", 5);
    ws_frame_parse(buf, len, 1 << 20, &f, &used);
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_MESSAGE && !m.compressed
          && m.len == 5, "uncompressed message with deflate negotiated");

    ws_frame_parse((uint8_t *) rsv1_ping, 2, 1 << 20, &f, &used);
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_ERROR && m.close_code == 1002,
          "RSV1 on a control frame is 1002");

    len = put_frame_n(buf, 0x41, z, third);
    ws_frame_parse(buf, len, 1 << 20, &f, &used);
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_NONE, "compressed fragment");
    ws_frame_parse((uint8_t *) rsv1_cont, 2, 1 << 20, &f, &used);
    CHECK(ws_reasm_feed(&r, &f, &m) == WS_EV_ERROR && m.close_code == 1002,
          "RSV1 on a continuation frame is 1002");

    ws_reasm_free(&r);
    pmd_free(&d);
    pmd_free(&in);
}


static void
test_deflate_answer(void)
{
    static const struct {
        int          offered;
        const char  *value;
        int          rc;
        int          accepted;
    } v[] = {
        { 1, "permessage-deflate; server_no_context_takeover; "
             "client_no_context_takeover", 0, 1 },
        { 1, "permessage-deflate;server_no_context_takeover", 0, 1 },
        { 1, " PerMessage-Deflate ; Server_No_Context_Takeover ; "
             "server_max_window_bits=10 ", 0, 1 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "server_max_window_bits=\"12\"", 0, 1 },
        { 1, "", 0, 0 },
        { 1, "  ", 0, 0 },
        { 0, "permessage-deflate; server_no_context_takeover", -1, 0 },
        { 1, "x-webkit-deflate-frame", -1, 0 },
        { 1, "permessage-deflate", -1, 0 },
        { 1, "permessage-deflate; client_no_context_takeover", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "client_max_window_bits=10", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "server_max_window_bits=7", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "server_max_window_bits=16", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "server_max_window_bits=08", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "server_max_window_bits", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "server_max_window_bits=\"12", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; "
             "server_no_context_takeover", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover=1", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover; foo", -1, 0 },
        { 1, "permessage-deflate; ; server_no_context_takeover", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover, "
             "permessage-deflate; server_no_context_takeover", -1, 0 },
        { 1, "permessage-deflate; server_no_context_takeover, foo", -1, 0 },
    };
    const char  *ok = "permessage-deflate; server_no_context_takeover";
    size_t       i;
    int          accepted, rc;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        accepted = 0;
        rc = pmd_check_answer(v[i].offered, v[i].value, strlen(v[i].value),
                              &accepted);
        CHECK(rc == v[i].rc && (rc != 0 || accepted == v[i].accepted),
              "answer \"%s\" (offered %d): %d, accepted %d", v[i].value,
              v[i].offered, rc, accepted);
    }

    /* the same acceptance in a second header: accepted twice */
    accepted = 0;
    CHECK(pmd_check_answer(1, ok, strlen(ok), &accepted) == 0 && accepted
          && pmd_check_answer(1, ok, strlen(ok), &accepted) == -1,
          "a second Sec-WebSocket-Extensions acceptance fails");
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
    stream_t  s, m;
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

    /* what was lost in a range: the sends a dropped sender never saw
       acknowledged */
    memset(&s, 0, sizeof(s));
    CHECK(stream_missing_range(&s, 0, 5) == 0, "nothing sent, nothing lost");
    s.next_seq = 10;
    stream_receive(&s, 0);
    stream_receive(&s, 3);
    stream_receive(&s, 9);
    CHECK(stream_missing_range(&s, 0, 10) == stream_missing(&s)
          && stream_missing(&s) == 7, "whole range = stream_missing");
    CHECK(stream_missing_range(&s, 2, 5) == 2, "2 and 4 missing of 2..4");
    CHECK(stream_missing_range(&s, 8, 20) == 1, "range cut at next_seq");
    CHECK(stream_missing_range(&s, 5, 5) == 0, "empty range");
    s.next_seq = 100000;
    CHECK(stream_missing_range(&s, 90000, 90010) == 10,
          "beyond the bitmap: all missing");

    /* lost among those marked: the chats the server said it delivered
       or kept */
    s.next_seq = 10;
    memset(&m, 0, sizeof(m));
    m.next_seq = 10;
    stream_receive(&m, 0);
    stream_receive(&m, 1);
    stream_receive(&m, 5);
    CHECK(stream_missing_marked(&s, &m) == 2, "1 and 5 marked, not received");
    stream_receive(&s, 5);
    CHECK(stream_missing_marked(&s, &m) == 1, "5 came");
    m.next_seq = 200;
    stream_receive(&m, 150);
    CHECK(stream_missing_marked(&s, &m) == 1, "marks beyond what was sent "
          "do not count");
    s.next_seq = 200;
    CHECK(stream_missing_marked(&s, &m) == 2, "beyond s's bitmap: missing");
    stream_free(&m);
    stream_free(&s);
}


static void
test_msgid(void)
{
    msgid_t      a, b;
    idtrack_t    t;
    char         buf[128];
    size_t       n;
    const char  *big = "18446744073709551615-1";   /* 20 digits: too long */

    CHECK(msgid_parse("1733600000000-0", 15, &a) == 0
          && a.ms == 1733600000000ULL && a.seq == 0, "ms-seq");
    CHECK(msgid_parse("1733600000000-17", 16, &a) == 0 && a.seq == 17,
          "seq 17");
    CHECK(msgid_parse("42", 2, &a) == 0 && a.ms == 42 && a.seq == 0,
          "ms alone");
    CHECK(msgid_parse("0", 1, &a) == 0 && a.ms == 0 && a.seq == 0, "\"0\"");
    CHECK(msgid_parse("", 0, &a) != 0, "empty");
    CHECK(msgid_parse("-1", 2, &a) != 0, "no ms");
    CHECK(msgid_parse("1-", 2, &a) != 0, "no seq");
    CHECK(msgid_parse("1-2-3", 5, &a) != 0, "two dashes");
    CHECK(msgid_parse("1x-2", 4, &a) != 0, "not digits");
    CHECK(msgid_parse(big, strlen(big), &a) != 0, "20 digits");
    CHECK(msgid_parse("5-1 trailing", 3, &a) == 0 && a.ms == 5 && a.seq == 1,
          "only n bytes read");

    msgid_parse("10-9", 4, &a);
    msgid_parse("10-10", 5, &b);
    CHECK(msgid_cmp(&a, &b) < 0 && msgid_cmp(&b, &a) > 0,
          "seq compared as a number, not as text");
    msgid_parse("9-99", 4, &a);
    CHECK(msgid_cmp(&a, &b) < 0, "ms first");
    msgid_parse("10-10", 5, &a);
    CHECK(msgid_cmp(&a, &b) == 0, "equal");

    memset(&t, 0, sizeof(t));
    CHECK(resume_since(&t, 0) != NULL && strcmp(resume_since(&t, 0), "0")
          == 0, "nothing received: since \"0\"");
    CHECK(resume_since(&t, 3) == NULL,
          "received without ids: nothing to resume from");
    CHECK(idtrack_see(&t, "100-0", 5) == ID_ABOVE, "first id");
    CHECK(idtrack_see(&t, "100-1", 5) == ID_ABOVE, "next seq");
    CHECK(idtrack_see(&t, "100-1", 5) == ID_NOT_ABOVE, "same id again");
    CHECK(idtrack_see(&t, "99-5", 4) == ID_NOT_ABOVE, "older id");
    CHECK(idtrack_see(&t, "nope", 4) == ID_BAD, "not an id");
    CHECK(strcmp(t.text, "100-1") == 0, "last id kept: %s", t.text);
    CHECK(idtrack_see(&t, "101-0", 5) == ID_ABOVE
          && strcmp(resume_since(&t, 3), "101-0") == 0,
          "resume from the highest id");

    n = resume_register(buf, sizeof(buf), "u1", NULL);
    CHECK(n == strlen(buf)
          && strcmp(buf, "{\"type\":\"register\",\"userId\":\"u1\"}") == 0,
          "register without since: %s", buf);
    n = resume_register(buf, sizeof(buf), "u1", "101-0");
    CHECK(n == strlen(buf)
          && strcmp(buf, "{\"type\":\"register\",\"userId\":\"u1\","
                    "\"since\":\"101-0\"}") == 0,
          "register with since: %s", buf);
    CHECK(json_str_eq(buf, n, "since", "101-0"), "since readable as JSON");
    CHECK(resume_register(buf, 20, "u1", "101-0") == 0, "too small");
}


static void
test_backoff(void)
{
    uint64_t  r = 0x1234567, top = ~(uint64_t) 0, d;
    unsigned  i;
    int       ok = 1;

    CHECK(backoff_ns(0.1, 5, 0, 0) == 0, "jitter can be 0");
    d = backoff_ns(0.1, 5, 0, top);
    CHECK(d < 100000000ULL && d > 99000000ULL, "first bound 0.1 s: %llu",
          (unsigned long long) d);
    d = backoff_ns(0.1, 5, 3, top);
    CHECK(d < 800000000ULL && d > 790000000ULL, "3 failures: 0.8 s: %llu",
          (unsigned long long) d);
    d = backoff_ns(0.1, 5, 200, top);
    CHECK(d < 5000000000ULL && d > 4900000000ULL, "capped at 5 s: %llu",
          (unsigned long long) d);
    d = backoff_ns(0.1, 5, 0, top / 2);
    CHECK(d > 45000000ULL && d < 55000000ULL, "half way: %llu",
          (unsigned long long) d);

    for (i = 0; i < 10000; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        ok &= backoff_ns(0.5, 5, i % 8, r) < 5000000000ULL;
    }
    CHECK(ok, "always under the cap");
}


static void
test_timeline(void)
{
    static timeline_t  t, u;
    size_t             at;
    int                i;

    CHECK(timeline_len(&t) == 0 && timeline_peak(&t, 10, &at) == 0,
          "empty timeline");

    /* 5 events in each of 2.0..2.9 s, 30 at 7.05 s, one far beyond */
    for (i = 0; i < 50; i++) {
        timeline_add(&t, 2000000000ULL + (uint64_t) i * 20000000ULL);
    }
    for (i = 0; i < 30; i++) {
        timeline_add(&t, 7050000000ULL);
    }
    timeline_add(&t, 3600ULL * 1000000000ULL);

    CHECK(t.b[20] == 5 && t.b[29] == 5 && t.b[30] == 0 && t.b[70] == 30,
          "100 ms buckets");
    CHECK(timeline_len(&t) == TL_BUCKETS, "late event in the last bucket");
    CHECK(timeline_peak(&t, 10, &at) == 50 && at == 20,
          "peak per second: the spread-out second, not the burst: at %zu",
          at);
    CHECK(timeline_peak(&t, 1, &at) == 30 && at == 70,
          "peak per 100 ms: the burst");

    memset(&u, 0, sizeof(u));
    for (i = 0; i < 45; i++) {
        timeline_add(&u, 7000000000ULL + (uint64_t) i * 10000000ULL);
    }
    timeline_merge(&u, &t);
    CHECK(timeline_peak(&u, 10, &at) == 75 && at == 65,
          "merged: 45 + 30 in 7.0..7.4 s; the first window holding them "
          "all starts at 6.5 s: %zu", at);
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


/*
 * The array of a chat bomb from its '[' on: "0" (",0")*, a blank at most,
 * then "]}" to the end.  Returns 1 when it is exactly that.
 */
static int
chat_bomb_array_ok(const char *s, size_t n)
{
    size_t  i = 1;

    if (n < 4 || s[0] != '[' || s[i++] != '0') {
        return 0;
    }

    while (i + 1 < n && s[i] == ',' && s[i + 1] == '0') {
        i += 2;
    }

    if (s[i] == ' ') {
        i++;
    }

    return i + 2 == n && s[i] == ']' && s[i + 1] == '}';
}


static void
test_bombs(void)
{
    static const size_t  sizes[] = { BOMB_MIN_SIZE, BOMB_MIN_SIZE + 1, 1000,
                                      1001, 1047552, 1047553 };
    static const char    head[] = "{\"type\":\"chat\",\"text\":[";
    bomb_kind_t          kinds[4];
    pmd_stream_t         d, in;
    const uint8_t       *z;
    uint8_t             *out;
    const char          *v;
    char                *buf;
    size_t               i, j, n, vlen, zlen, olen, hl = sizeof(head) - 1;
    int                  ok;

    memset(&d, 0, sizeof(d));
    memset(&in, 0, sizeof(in));
    buf = malloc(1047553 + 1);

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        n = sizes[i];
        buf[n] = '#';

        CHECK(bomb_text(BOMB_CHAT, buf, n) == 0 && buf[n] == '#'
              && memcmp(buf, head, hl) == 0
              && json_str_eq(buf, n, "type", "chat")
              && json_get(buf, n, "text", &v, &vlen) == JSON_ARRAY
              && v == buf + hl - 1 && vlen == n - hl
              && chat_bomb_array_ok(v, n - hl + 1),
              "chat bomb of %zu bytes: {\"type\":\"chat\",\"text\":[0,..,0]}",
              n);

        ok = bomb_text(BOMB_DEEP, buf, n) == 0 && buf[n] == '#';
        for (j = 0; j < n; j++) {
            ok = ok && buf[j] == '[';
        }
        CHECK(ok, "deep bomb of %zu bytes: [[[[...", n);

        ok = bomb_text(BOMB_UNCLOSED, buf, n) == 0 && buf[n] == '#'
             && memcmp(buf, head, hl) == 0
             && json_get(buf, n, "text", &v, &vlen) == JSON_NONE;
        for (j = hl; j < n; j++) {
            ok = ok && buf[j] == ((j - hl) % 2 ? ',' : '0');
        }
        CHECK(ok, "unclosed bomb of %zu bytes: {\"type\":\"chat\","
              "\"text\":[0,0,..", n);
    }

    CHECK(bomb_text(BOMB_CHAT, buf, BOMB_MIN_SIZE - 1) == -1
          && bomb_text(BOMB_KINDS, buf, 1000) == -1,
          "too small a bomb, or no such kind");

    /* each compresses to about a thousandth and inflates back whole */
    for (i = 0; i < BOMB_KINDS; i++) {
        bomb_text((bomb_kind_t) i, buf, 1047552);
        CHECK(pmd_deflate(&d, buf, 1047552, &z, &zlen) == 0 && zlen < 4096
              && pmd_inflate(&in, z, zlen, 1 << 20, &out, &olen) == 0
              && olen == 1047552 && memcmp(out, buf, olen) == 0,
              "%s bomb: 1047552 bytes compressed to %zu and back",
              bomb_kind_names[i], zlen);
    }

    CHECK(bomb_kinds_parse("chat,deep,unclosed", kinds, 4) == 3
          && kinds[0] == BOMB_CHAT && kinds[1] == BOMB_DEEP
          && kinds[2] == BOMB_UNCLOSED, "kinds: chat,deep,unclosed");
    CHECK(bomb_kinds_parse("deep", kinds, 4) == 1 && kinds[0] == BOMB_DEEP,
          "kinds: deep");
    CHECK(bomb_kinds_parse("chat,chat,deep", kinds, 4) == 3
          && kinds[1] == BOMB_CHAT, "kinds: a kind twice weighs double");
    CHECK(bomb_kinds_parse("", kinds, 4) == -1
          && bomb_kinds_parse("chat,", kinds, 4) == -1
          && bomb_kinds_parse("chat,,deep", kinds, 4) == -1
          && bomb_kinds_parse("chats", kinds, 4) == -1
          && bomb_kinds_parse("deep,deep,deep,deep,deep", kinds, 4) == -1,
          "kinds: empty, unknown or too many refused");

    free(buf);
    pmd_free(&d);
    pmd_free(&in);
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
    test_deflate_examples();
    test_deflate_round_trip();
    test_inflate_errors();
    test_deflate_frames();
    test_deflate_answer();
    test_utf8();
    test_json();
    test_stream();
    test_msgid();
    test_backoff();
    test_timeline();
    test_hist();
    test_bombs();

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

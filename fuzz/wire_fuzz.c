
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: the bus's wire format, ngx_ws_relay_bus_wire.c, as
 * the frame target does the frame codec: pure functions on any bytes.
 *
 * The input, whole, is
 * - a message on a user's channel and one on a node channel, for
 *   ngx_ws_relay_wire_parse_user() and _parse_node(): each agrees with
 *   an oracle of its own below (written from the format in
 *   ngx_ws_relay_bus_wire.h, a kept message's history id included), and
 *   what it parses lies inside the input;
 * - a channel, for ngx_ws_relay_wire_channel_name() with two prefixes and
 *   every kind: "u:{" and the history's "h:{", "m:{" with their closing
 *   "}", and "n:";
 * - a client's "since", for ngx_ws_relay_wire_id_parse(): it takes
 *   exactly "<1-15 digits>" and "<1-15 digits>-<1-15 digits>", as the
 *   id "<ms>-<seq>" (seq 0 when it is not given), and writes no byte of
 *   the id's buffer beyond the id, nor past NGX_WS_RELAY_ID_LEN;
 * - what Redis sends a subscriber: hiredis's reader makes replies of it,
 *   and ngx_ws_relay_wire_parse_push() must classify each one as the
 *   oracle does ("message", "subscribe", "unsubscribe" and their sharded
 *   forms of a Redis Cluster, "smessage", "ssubscribe", "sunsubscribe":
 *   NGX_OK, a confirmation "subscribed", an end "unsubscribed"; another
 *   array of two strings and anything, NGX_DECLINED; the rest, and a
 *   message whose payload is no string, NGX_ERROR), its channel and
 *   payload those of the reply;
 * - of every reply the reader makes, and every element in it: for
 *   ngx_ws_relay_wire_redirect(), only an error "MOVED <slot>
 *   <host>:<port>" or "ASK ..." (a decimal slot below 16384 up to the
 *   first space, the host up to the last colon, maybe empty, a decimal
 *   port of 1 to 65535) is NGX_OK, with what it says and a host inside
 *   the reply; an error that begins so and says no more than the
 *   prefix, and any other reply, NGX_DECLINED; the rest of those errors
 *   NGX_ERROR; of every array, for ngx_ws_relay_wire_cluster_slots()
 *   with room for none, one or two ranges and for as many as the array
 *   has elements, in an array of exactly that size: [[first, last,
 *   [host, port, ...], ...], ...] with integers 0 <= first <= last <
 *   16384 is NGX_OK with the ranges of the masters with an address (a
 *   string host other than "?", an integer port of 1 to 65535), in
 *   order, their hosts the reply's strings, unless there are more than
 *   the room; any other shape is NGX_ERROR;
 * - the whole input as a key, for ngx_ws_relay_wire_slot(): it agrees
 *   with an oracle of its own (CRC16-XMODEM, table-driven, of the key or
 *   of its hash tag, the bytes between the first "{" and the next "}"
 *   when there is at least one), and is below 16384.
 *
 * Then the input is read as fields (a length byte and that many bytes,
 * or 8 bytes for a number) for round trips: a user message written with
 * _user_head() from any origin without a space, id and text parses back
 * to them, and so does one written for the history script (stored: the
 * script adds "<history id> "), with its history id; _ack() and _ping()
 * of any numbers parse back to them, within NGX_WS_RELAY_WIRE_HEAD_LEN;
 * _channel() of any prefix and name, for each kind, gives the name back
 * by _channel_name(), and nothing for the other kinds, and has the slot
 * the oracle gives; a user's channel and the history's two keys, of a
 * prefix without "{" and a name that does not begin with "}", share the
 * slot of the name (up to a "}" in it), as a Redis Cluster needs of the
 * history script; _publish() of any prefix, name and parts, sharded or
 * not, in a buffer of exactly _publish_len() bytes, is read by hiredis's
 * reader as one command, ["PUBLISH" or "SPUBLISH",
 * <prefix><kind><name>[}], <the parts, concatenated>], and nothing more;
 * _command() of any arguments, in a buffer of exactly _command_len()
 * bytes, is read back by hiredis's reader as exactly those arguments;
 * a since parsed by _id_parse() parses again to itself; and
 * _id_compare() on three ids (parsed, or written from two numbers with
 * leading zeros, or any bytes) is antisymmetric, 0 on equal ids,
 * transitive, and on ids "<ms>-<seq>" the order of the two numbers;
 * _id_valid() takes of them exactly "<1-20 digits>-<1-20 digits>", the
 * stream ids of Redis that may go into a client's JSON;
 * _id_text() appends the id to an object, in exactly _id_text_len()
 * bytes.
 *
 * A prefix comes from the configuration and has no NUL byte: the
 * prefixes tried here have none either.
 */


#include "fuzz_reader.h"
#include "ngx_ws_relay_bus_wire.h"


/* replies read off one input, at most */
#define FUZZ_REPLIES  16
#define FUZZ_PARTS    4
/* arguments of a command, at most (the history script takes 13) */
#define FUZZ_ARGS     16
#define FUZZ_KINDS    4
/* ids compared at once */
#define FUZZ_IDS      3
/* Redis Cluster's hash slots */
#define FUZZ_SLOTS    16384


typedef struct {
    const u_char   *pos;
    const u_char   *last;
} fuzz_in_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_parse_user(ngx_str_t *payload);
static void fuzz_parse_node(ngx_str_t *payload);
static void fuzz_channel_name(ngx_str_t *channel, ngx_str_t *prefix);
static void fuzz_id_parse(ngx_str_t *text);
static void fuzz_pushes(const u_char *data, size_t size);
static void fuzz_push(redisReply *reply);
static void fuzz_reply_tree(redisReply *reply);
static void fuzz_redirect(redisReply *reply);
static void fuzz_cluster_slots(redisReply *reply, ngx_uint_t room);
static void fuzz_slot(ngx_str_t *key);
static void fuzz_slots_shared(ngx_str_t *prefix, ngx_str_t *name);
static ngx_uint_t fuzz_slot_of(const u_char *key, size_t len);
static uint16_t fuzz_crc16(const u_char *p, size_t len);
static ngx_int_t fuzz_decimal(const u_char *p, const u_char *last,
    ngx_int_t max);
static void fuzz_round_trips(fuzz_in_t *in);
static void fuzz_user_round_trip(ngx_str_t *origin, uint64_t id,
    ngx_str_t *hid, ngx_str_t *text);
static void fuzz_publish(fuzz_in_t *in, ngx_str_t *prefix, ngx_str_t *name,
    const char *kind);
static void fuzz_command(fuzz_in_t *in);
static void fuzz_ids(fuzz_in_t *in);
static void fuzz_id_text(fuzz_in_t *in);
static void fuzz_id_make(fuzz_in_t *in, ngx_str_t *id, u_char *buf);
static ngx_int_t fuzz_id_value(ngx_str_t *id, uint64_t *ms, uint64_t *seq);
static ngx_uint_t fuzz_id_stream(ngx_str_t *id);
static ngx_int_t fuzz_sign(ngx_int_t rc);
static const u_char *fuzz_number(const u_char *p, const u_char *last,
    uint64_t *n);
static ngx_uint_t fuzz_inside(ngx_str_t *part, ngx_str_t *whole);
static ngx_uint_t fuzz_is(redisReply *r, const void *data, size_t len);
static void fuzz_field(fuzz_in_t *in, ngx_str_t *s);
static uint64_t fuzz_u64(fuzz_in_t *in);


/* every kind of channel and key, and whether it closes a hash tag */
static const char  *fuzz_kinds[FUZZ_KINDS] = {
    NGX_WS_RELAY_WIRE_USER, NGX_WS_RELAY_WIRE_NODE, "h:{", "m:{"
};

/* the pushes of a subscriber: 0 a message, 1 subscribed, 2 unsubscribed */
static const struct {
    const char   *type;
    ngx_uint_t    kind;
} fuzz_push_types[] = {
    { "message", 0 }, { "subscribe", 1 }, { "unsubscribe", 2 },
    { "smessage", 0 }, { "ssubscribe", 1 }, { "sunsubscribe", 2 }
};

/* CRC16-XMODEM (polynomial 0x1021, no reflection), a byte at a time */
static uint16_t     fuzz_crc_table[256];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint16_t    crc;
    ngx_uint_t  i, k;

    (void) argc;
    (void) argv;

    for (i = 0; i < 256; i++) {
        crc = (uint16_t) (i << 8);

        for (k = 0; k < 8; k++) {
            crc = (uint16_t) ((crc & 0x8000) ? (crc << 1) ^ 0x1021
                                             : crc << 1);
        }

        fuzz_crc_table[i] = crc;
    }

    /* the oracle's own check: the CRC's catalogue value, and Redis's */
    fuzz_assert(fuzz_crc16((u_char *) "123456789", 9) == 0x31c3);
    fuzz_assert(fuzz_slot_of((u_char *) "foo", 3) == 12182);
    fuzz_assert(fuzz_slot_of((u_char *) "foo{bar}{zap}", 13) == 5061);
    fuzz_assert(fuzz_slot_of((u_char *) "{}foo", 5) == 9500);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char     *copy;
    ngx_str_t   s, prefix;
    fuzz_in_t   in;

    /* a buffer of the exact size: ASan sees any read past the input */
    copy = malloc(size ? size : 1);
    fuzz_assert(copy != NULL);

    if (size) {
        ngx_memcpy(copy, data, size);
    }

    s.data = copy;
    s.len = size;

    fuzz_parse_user(&s);
    fuzz_parse_node(&s);

    ngx_str_set(&prefix, "ws_relay:");
    fuzz_channel_name(&s, &prefix);
    ngx_str_set(&prefix, "");
    fuzz_channel_name(&s, &prefix);

    fuzz_id_parse(&s);
    fuzz_slot(&s);

    fuzz_pushes(copy, size);

    in.pos = copy;
    in.last = copy + size;

    fuzz_round_trips(&in);

    free(copy);

    return 0;
}


/*
 * "<origin> <id> <text>" or "<origin> <id>:<hid> <text>": an origin
 * without space, a 64-bit decimal id, a history id of 1 to
 * NGX_WS_RELAY_ID_LEN digits and dashes.  The oracle cuts the word
 * between the first two spaces, and reads it whole.
 */

static void
fuzz_parse_user(ngx_str_t *payload)
{
    u_char        *sp, *sp2, *last;
    size_t         i;
    uint64_t       id, ref_id;
    ngx_int_t      rc;
    ngx_str_t      origin, hid, text;
    const u_char  *p;

    ngx_memset(&hid, 0xa5, sizeof(ngx_str_t));

    rc = ngx_ws_relay_wire_parse_user(payload, &origin, &id, &hid, &text);

    last = payload->data + payload->len;
    sp = memchr(payload->data, ' ', payload->len);
    sp2 = NULL;
    p = NULL;

    if (sp != NULL && sp != payload->data) {
        sp2 = memchr(sp + 1, ' ', last - sp - 1);
    }

    if (sp2 != NULL) {
        p = fuzz_number(sp + 1, sp2, &ref_id);
    }

    /* the word: the id, then nothing, or ':' and the history id */

    if (p != NULL && p != sp2) {
        if (*p != ':' || sp2 - p - 1 == 0
            || (size_t) (sp2 - p - 1) > NGX_WS_RELAY_ID_LEN)
        {
            p = NULL;

        } else {
            for (i = 1; p + i < sp2; i++) {
                if (!isdigit(p[i]) && p[i] != '-') {
                    p = NULL;
                    break;
                }
            }
        }
    }

    if (p == NULL) {
        fuzz_assert(rc == NGX_ERROR);
        return;
    }

    fuzz_assert(rc == NGX_OK);
    fuzz_assert(fuzz_inside(&origin, payload) && fuzz_inside(&text, payload));
    fuzz_assert(origin.data == payload->data
                && origin.len == (size_t) (sp - payload->data));
    fuzz_assert(id == ref_id);
    fuzz_assert(text.data == sp2 + 1 && text.data + text.len == last);

    if (p == sp2) {
        fuzz_assert(hid.len == 0);

    } else {
        fuzz_assert(fuzz_inside(&hid, payload));
        fuzz_assert(hid.data == p + 1 && hid.data + hid.len == sp2);
    }
}


/* "ack:<id>:<count>" or "ping:<seq>", 64-bit decimals, nothing after */

static void
fuzz_parse_node(ngx_str_t *payload)
{
    u_char                    *last;
    uint64_t                   a, b;
    ngx_int_t                  rc;
    const u_char              *p;
    ngx_ws_relay_wire_node_t   m;

    rc = ngx_ws_relay_wire_parse_node(payload, &m);

    last = payload->data + payload->len;
    p = NULL;
    b = 0;

    if (payload->len >= 4 && memcmp(payload->data, "ack:", 4) == 0) {
        p = fuzz_number(payload->data + 4, last, &a);

        if (p != NULL && p < last && *p == ':') {
            p = fuzz_number(p + 1, last, &b);

        } else {
            p = NULL;
        }

        if (p == last) {
            fuzz_assert(rc == NGX_OK && m.type == NGX_WS_RELAY_WIRE_ACK);
            fuzz_assert(m.id == a && m.count == b);
            return;
        }

    } else if (payload->len >= 5 && memcmp(payload->data, "ping:", 5) == 0) {
        p = fuzz_number(payload->data + 5, last, &a);

        if (p == last) {
            fuzz_assert(rc == NGX_OK && m.type == NGX_WS_RELAY_WIRE_PING);
            fuzz_assert(m.id == a && m.count == 0);
            return;
        }
    }

    fuzz_assert(rc == NGX_ERROR);
}


/* "<prefix><kind><name>", and "}" after a name that a kind "u:{" opens */

static void
fuzz_channel_name(ngx_str_t *channel, ngx_str_t *prefix)
{
    size_t       n, tag;
    ngx_int_t    rc;
    ngx_str_t    name;
    ngx_uint_t   k, ours;

    for (k = 0; k < FUZZ_KINDS; k++) {
        rc = ngx_ws_relay_wire_channel_name(channel, prefix, fuzz_kinds[k],
                                            &name);

        n = strlen(fuzz_kinds[k]);
        tag = (fuzz_kinds[k][n - 1] == '{');

        ours = channel->len >= prefix->len + n + tag + 1
               && memcmp(channel->data, prefix->data, prefix->len) == 0
               && memcmp(channel->data + prefix->len, fuzz_kinds[k], n) == 0
               && (!tag || channel->data[channel->len - 1] == '}');

        if (!ours) {
            fuzz_assert(rc == NGX_DECLINED);
            continue;
        }

        fuzz_assert(rc == NGX_OK && fuzz_inside(&name, channel));
        fuzz_assert(name.len >= 1
                    && name.data == channel->data + prefix->len + n
                    && name.data + name.len
                       == channel->data + channel->len - tag);
    }
}


/*
 * A client's since: one to fifteen digits, and maybe a dash and one to
 * fifteen digits; the id is the text, with "-0" when it has no dash.
 * Nothing is written past the id: the rest of the buffer keeps its
 * bytes, and the buffer is a heap block of its own size.
 */

static void
fuzz_id_parse(ngx_str_t *text)
{
    size_t              i, digits[2];
    ngx_int_t           rc;
    ngx_str_t           again;
    ngx_uint_t          parts, valid;
    ngx_ws_relay_id_t  *id, *id2;

    id = malloc(sizeof(ngx_ws_relay_id_t));
    fuzz_assert(id != NULL);
    ngx_memset(id, 0xa5, sizeof(ngx_ws_relay_id_t));

    rc = ngx_ws_relay_wire_id_parse(text, id);

    parts = 0;
    digits[0] = 0;
    digits[1] = 0;
    valid = 1;

    for (i = 0; i < text->len && valid; i++) {
        if (isdigit(text->data[i])) {
            digits[parts]++;

        } else if (text->data[i] == '-' && parts == 0) {
            parts = 1;

        } else {
            valid = 0;
        }
    }

    valid = valid && digits[0] >= 1 && digits[0] <= 15
            && (parts == 0 || (digits[1] >= 1 && digits[1] <= 15));

    if (!valid) {
        fuzz_assert(rc == NGX_ERROR);
        free(id);
        return;
    }

    fuzz_assert(rc == NGX_OK);
    fuzz_assert(id->len == text->len + (parts ? 0 : 2));
    fuzz_assert(id->len <= NGX_WS_RELAY_ID_LEN);
    fuzz_assert(ngx_memcmp(id->data, text->data, text->len) == 0);
    fuzz_assert(parts || ngx_memcmp(id->data + text->len, "-0", 2) == 0);

    /* untouched after the id, up to the length that follows the bytes */
    for (i = id->len; i < offsetof(ngx_ws_relay_id_t, len); i++) {
        fuzz_assert(((u_char *) id)[i] == 0xa5);
    }

    /* the id is a since too, itself */

    again.data = id->data;
    again.len = id->len;

    id2 = malloc(sizeof(ngx_ws_relay_id_t));
    fuzz_assert(id2 != NULL);

    fuzz_assert(ngx_ws_relay_wire_id_parse(&again, id2) == NGX_OK);
    fuzz_assert(id2->len == id->len
                && ngx_memcmp(id2->data, id->data, id->len) == 0);
    fuzz_assert(ngx_ws_relay_wire_id_compare(&again, &again) == 0);

    free(id2);
    free(id);
}


/*
 * every reply hiredis reads off the bytes: as a subscriber would get it,
 * and as a command's reply, a redirection or a slot map maybe
 */

static void
fuzz_pushes(const u_char *data, size_t size)
{
    int           rc;
    void         *r;
    ngx_uint_t    i;
    redisReader  *reader;

    reader = fuzz_reader_new(data, size);

    for (i = 0; i < FUZZ_REPLIES; i++) {
        r = NULL;
        rc = redisReaderGetReply(reader, &r);

        if (rc != REDIS_OK || r == NULL) {
            break;
        }

        fuzz_push(r);
        fuzz_reply_tree(r);

        freeReplyObject(r);
    }

    redisReaderFree(reader);
}


static void
fuzz_push(redisReply *reply)
{
    ngx_int_t                  got, want;
    ngx_uint_t                 i, kind;
    redisReply               **e;
    ngx_ws_relay_wire_push_t   push;

    e = reply->element;
    kind = 0;

    ngx_memset(&push, 0xa5, sizeof(push));
    got = ngx_ws_relay_wire_parse_push(reply, &push);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || e[0]->type != REDIS_REPLY_STRING
        || e[1]->type != REDIS_REPLY_STRING)
    {
        want = NGX_ERROR;

    } else {
        want = NGX_DECLINED;

        for (i = 0; i < sizeof(fuzz_push_types) / sizeof(fuzz_push_types[0]);
             i++)
        {
            if (fuzz_is(e[0], fuzz_push_types[i].type,
                        strlen(fuzz_push_types[i].type)))
            {
                kind = fuzz_push_types[i].kind;
                want = (kind != 0 || e[2]->type == REDIS_REPLY_STRING)
                       ? NGX_OK : NGX_ERROR;
                break;
            }
        }
    }

    fuzz_assert(got == want);

    if (got != NGX_OK) {
        return;
    }

    fuzz_assert(push.channel.data == (u_char *) e[1]->str
                && push.channel.len == e[1]->len);

    fuzz_assert(push.subscribed == (kind == 1)
                && push.unsubscribed == (kind == 2));

    if (kind) {
        fuzz_assert(push.payload.len == 0);

    } else {
        fuzz_assert(push.payload.data == (u_char *) e[2]->str
                    && push.payload.len == e[2]->len);
    }
}


/* a reply and every reply in it (hiredis's reader nests them 9 deep) */

static void
fuzz_reply_tree(redisReply *reply)
{
    size_t  i;

    fuzz_redirect(reply);

    if (reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    fuzz_cluster_slots(reply, 0);
    fuzz_cluster_slots(reply, 1);
    fuzz_cluster_slots(reply, 2);
    fuzz_cluster_slots(reply, reply->elements);

    for (i = 0; i < reply->elements; i++) {
        fuzz_reply_tree(reply->element[i]);
    }
}


/*
 * -MOVED <slot> <host>:<port>, -ASK <slot> <host>:<port>: the slot up to
 * the first space after the word, the host up to the last colon (an IPv6
 * address has colons; Redis 7 may leave it empty: the node's own), each
 * number of decimal digits only
 */

static void
fuzz_redirect(redisReply *reply)
{
    u_char                        *p, *last, *space, *colon;
    ngx_int_t                      rc, want, slot, port;
    ngx_uint_t                     ask;
    ngx_str_t                      whole;
    ngx_ws_relay_wire_redirect_t   rd;

    ngx_memset(&rd, 0xa5, sizeof(rd));
    rc = ngx_ws_relay_wire_redirect(reply, &rd);

    want = NGX_DECLINED;
    p = NULL;
    ask = 0;
    slot = -1;
    port = -1;
    space = NULL;
    colon = NULL;
    last = NULL;

    if (reply->type == REDIS_REPLY_ERROR) {
        p = (u_char *) reply->str;
        last = p + reply->len;

        if (reply->len > 6 && memcmp(p, "MOVED ", 6) == 0) {
            p += 6;

        } else if (reply->len > 4 && memcmp(p, "ASK ", 4) == 0) {
            ask = 1;
            p += 4;

        } else {
            p = NULL;
        }
    }

    if (p) {
        want = NGX_ERROR;
        space = memchr(p, ' ', last - p);

        if (space) {
            slot = fuzz_decimal(p, space, FUZZ_SLOTS - 1);
            colon = memrchr(space + 1, ':', last - space - 1);
        }

        if (slot >= 0 && colon) {
            port = fuzz_decimal(colon + 1, last, 65535);
        }

        if (port > 0) {
            want = NGX_OK;
        }
    }

    fuzz_assert(rc == want);

    if (rc != NGX_OK) {
        return;
    }

    whole.data = (u_char *) reply->str;
    whole.len = reply->len;

    fuzz_assert(rd.ask == ask && rd.slot == (ngx_uint_t) slot
                && rd.slot < FUZZ_SLOTS);
    fuzz_assert(rd.port == port && rd.port > 0 && rd.port < 65536);
    fuzz_assert(fuzz_inside(&rd.host, &whole));
    fuzz_assert(rd.host.data == space + 1
                && rd.host.data + rd.host.len == colon);
}


/*
 * CLUSTER SLOTS, into room ranges (a heap block of exactly that many):
 * [[first, last, [host, port, ...], replicas...], ...]
 */

static void
fuzz_cluster_slots(redisReply *reply, ngx_uint_t room)
{
    size_t                      i;
    ngx_int_t                   rc, want;
    ngx_str_t                   host;
    ngx_uint_t                  n, found;
    redisReply                 *e, *m;
    ngx_ws_relay_wire_range_t  *ranges;

    ranges = malloc(room ? room * sizeof(ngx_ws_relay_wire_range_t) : 1);
    fuzz_assert(ranges != NULL);

    if (room) {
        ngx_memset(ranges, 0xa5, room * sizeof(ngx_ws_relay_wire_range_t));
    }

    n = room;
    rc = ngx_ws_relay_wire_cluster_slots(reply, ranges, &n);

    want = (reply->type == REDIS_REPLY_ARRAY) ? NGX_OK : NGX_ERROR;
    found = 0;

    for (i = 0; want == NGX_OK && i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[0]->integer < 0
            || e->element[1]->integer < e->element[0]->integer
            || e->element[1]->integer >= FUZZ_SLOTS)
        {
            want = NGX_ERROR;
            break;
        }

        m = e->element[2];

        if (m->elements >= 2 && m->element[0]->type == REDIS_REPLY_STRING
            && m->element[1]->type == REDIS_REPLY_INTEGER
            && m->element[1]->integer >= 1 && m->element[1]->integer <= 65535
            && !fuzz_is(m->element[0], "?", 1))
        {
            found++;
        }
    }

    if (found > room) {
        want = NGX_ERROR;
    }

    fuzz_assert(rc == want);

    if (rc != NGX_OK) {
        free(ranges);
        return;
    }

    fuzz_assert(n == found && n <= room);

    /* the masters with an address, in order */

    for (i = 0, n = 0; i < reply->elements; i++) {
        e = reply->element[i];
        m = e->element[2];

        if (m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING
            || m->element[1]->type != REDIS_REPLY_INTEGER
            || m->element[1]->integer < 1 || m->element[1]->integer > 65535
            || fuzz_is(m->element[0], "?", 1))
        {
            continue;
        }

        host.data = (u_char *) m->element[0]->str;
        host.len = m->element[0]->len;

        fuzz_assert(ranges[n].first <= ranges[n].last
                    && ranges[n].last < FUZZ_SLOTS);
        fuzz_assert(ranges[n].first == (ngx_uint_t) e->element[0]->integer
                    && ranges[n].last == (ngx_uint_t) e->element[1]->integer);
        fuzz_assert(ranges[n].host.data == host.data
                    && ranges[n].host.len == host.len);
        fuzz_assert(ranges[n].port == (ngx_int_t) m->element[1]->integer
                    && ranges[n].port > 0 && ranges[n].port < 65536);
        n++;
    }

    fuzz_assert(n == found);

    free(ranges);
}


/* any bytes as a key: the oracle's slot */

static void
fuzz_slot(ngx_str_t *key)
{
    ngx_uint_t  slot;

    slot = ngx_ws_relay_wire_slot(key->data, key->len);

    fuzz_assert(slot < FUZZ_SLOTS);
    fuzz_assert(slot == fuzz_slot_of(key->data, key->len));
}


/*
 * A user's channel and its history's keys: one slot, the name's (up to
 * its first "}"), when the prefix opens no tag before theirs and the
 * name does not close it at once
 */

static void
fuzz_slots_shared(ngx_str_t *prefix, ngx_str_t *name)
{
    u_char      *buf, *p, *close;
    size_t       len;
    ngx_uint_t   k, slot, want;

    if (name->len == 0 || name->data[0] == '}'
        || memchr(prefix->data, '{', prefix->len))
    {
        return;
    }

    close = memchr(name->data, '}', name->len);
    len = close ? (size_t) (close - name->data) : name->len;
    want = fuzz_crc16(name->data, len) & (FUZZ_SLOTS - 1);

    for (k = 0; k < FUZZ_KINDS; k++) {
        if (fuzz_kinds[k][strlen(fuzz_kinds[k]) - 1] != '{') {
            continue;
        }

        len = ngx_ws_relay_wire_channel_len(prefix, fuzz_kinds[k], name);

        buf = malloc(len);
        fuzz_assert(buf != NULL);

        p = ngx_ws_relay_wire_channel(buf, prefix, fuzz_kinds[k], name);
        slot = ngx_ws_relay_wire_slot(buf, p - buf);

        fuzz_assert(slot == want);

        free(buf);
    }
}


/* the hash tag: after the first "{", up to the next "}", not empty */

static ngx_uint_t
fuzz_slot_of(const u_char *key, size_t len)
{
    const u_char  *open, *close;

    open = memchr(key, '{', len);

    if (open) {
        close = memchr(open + 1, '}', key + len - open - 1);

        if (close && close - open > 1) {
            key = open + 1;
            len = close - open - 1;
        }
    }

    return fuzz_crc16(key, len) % FUZZ_SLOTS;
}


static uint16_t
fuzz_crc16(const u_char *p, size_t len)
{
    size_t    i;
    uint16_t  crc;

    crc = 0;

    for (i = 0; i < len; i++) {
        crc = (uint16_t) ((crc << 8) ^ fuzz_crc_table[(crc >> 8) ^ p[i]]);
    }

    return crc;
}


/* decimal digits only, at least one, at most max; -1 otherwise */

static ngx_int_t
fuzz_decimal(const u_char *p, const u_char *last, ngx_int_t max)
{
    ngx_int_t  v;

    if (p == last) {
        return -1;
    }

    for (v = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }

        v = v * 10 + (*p - '0');

        if (v > max) {
            return -1;
        }
    }

    return v;
}


static void
fuzz_round_trips(fuzz_in_t *in)
{
    u_char                    *buf, *p, head[NGX_WS_RELAY_WIRE_HEAD_LEN];
    u_char                     hbuf[NGX_WS_RELAY_ID_LEN];
    uint64_t                   id, count;
    ngx_str_t                  origin, text, payload, prefix, name, hid;
    ngx_uint_t                 i, k;
    ngx_ws_relay_wire_node_t   m;

    id = fuzz_u64(in);
    count = fuzz_u64(in);
    fuzz_field(in, &origin);
    fuzz_field(in, &text);

    /* a user's message: published as it is, and for the history script */

    buf = malloc(origin.len + 1);
    fuzz_assert(buf != NULL);

    p = ngx_cpymem(buf, origin.data, origin.len);

    if (origin.len == 0) {
        *p++ = 'o';
    }

    /* the origin is a node id: no space in it */
    for (k = 0; k < (size_t) (p - buf); k++) {
        if (buf[k] == ' ') {
            buf[k] = '_';
        }
    }

    origin.data = buf;
    origin.len = p - buf;

    ngx_str_null(&hid);
    fuzz_user_round_trip(&origin, id, &hid, &text);

    /* a stream id as Redis writes it, of the two numbers */
    hid.data = hbuf;
    hid.len = ngx_sprintf(hbuf, "%uL-%uL", id, count) - hbuf;
    fuzz_assert(hid.len <= NGX_WS_RELAY_ID_LEN);

    fuzz_user_round_trip(&origin, id, &hid, &text);

    free(buf);

    /* an ack and a ping */

    payload.data = head;
    payload.len = ngx_ws_relay_wire_ack(head, id, (ngx_uint_t) count) - head;
    fuzz_assert(payload.len <= NGX_WS_RELAY_WIRE_HEAD_LEN);
    fuzz_assert(ngx_ws_relay_wire_parse_node(&payload, &m) == NGX_OK);
    fuzz_assert(m.type == NGX_WS_RELAY_WIRE_ACK && m.id == id
                && m.count == (ngx_uint_t) count);

    payload.len = ngx_ws_relay_wire_ping(head, count) - head;
    fuzz_assert(payload.len <= NGX_WS_RELAY_WIRE_HEAD_LEN);
    fuzz_assert(ngx_ws_relay_wire_parse_node(&payload, &m) == NGX_OK);
    fuzz_assert(m.type == NGX_WS_RELAY_WIRE_PING && m.id == count
                && m.count == 0);

    /* channels: a prefix of the configuration, a user or a node */

    fuzz_field(in, &prefix);
    fuzz_field(in, &name);

    buf = malloc(prefix.len + 1);
    fuzz_assert(buf != NULL);

    for (i = 0, k = 0; i < prefix.len; i++) {
        if (prefix.data[i] != '\0') {
            buf[k++] = prefix.data[i];
        }
    }

    prefix.data = buf;
    prefix.len = k;

    for (k = 0; k < FUZZ_KINDS; k++) {
        fuzz_publish(in, &prefix, &name, fuzz_kinds[k]);
    }

    fuzz_slots_shared(&prefix, &name);

    free(buf);

    fuzz_command(in);
    fuzz_ids(in);
    fuzz_id_text(in);
}


/*
 * "<origin>" _user_head() "<text>", or, stored, "<origin>" _user_head()
 * "<hid> <text>" as the history script completes it: within
 * NGX_WS_RELAY_WIRE_HEAD_LEN, and parsed back to the same
 */

static void
fuzz_user_round_trip(ngx_str_t *origin, uint64_t id, ngx_str_t *hid,
    ngx_str_t *text)
{
    u_char     *buf, *p, *head;
    uint64_t    id2;
    ngx_str_t   payload, origin2, hid2, text2;

    buf = malloc(origin->len + NGX_WS_RELAY_WIRE_HEAD_LEN + hid->len + 1
                 + text->len);
    fuzz_assert(buf != NULL);

    head = ngx_cpymem(buf, origin->data, origin->len);

    p = ngx_ws_relay_wire_user_head(head, id, hid->len ? 1 : 0);
    fuzz_assert((size_t) (p - head) <= NGX_WS_RELAY_WIRE_HEAD_LEN);

    if (hid->len) {
        fuzz_assert(p[-1] == ':');
        p = ngx_cpymem(p, hid->data, hid->len);
        *p++ = ' ';

    } else {
        fuzz_assert(p[-1] == ' ');
    }

    p = ngx_cpymem(p, text->data, text->len);

    payload.data = buf;
    payload.len = p - buf;

    fuzz_assert(ngx_ws_relay_wire_parse_user(&payload, &origin2, &id2, &hid2,
                                             &text2)
                == NGX_OK);
    fuzz_assert(origin2.data == buf && origin2.len == origin->len);
    fuzz_assert(id2 == id);
    fuzz_assert(hid2.len == hid->len
                && (hid->len == 0
                    || ngx_memcmp(hid2.data, hid->data, hid->len) == 0));
    fuzz_assert(text2.len == text->len
                && (text->len == 0
                    || ngx_memcmp(text2.data, text->data, text->len) == 0));

    free(buf);
}


static void
fuzz_publish(fuzz_in_t *in, ngx_str_t *prefix, ngx_str_t *name,
    const char *kind)
{
    int           rc;
    void         *r;
    u_char       *buf, *p, *q, s;
    size_t        len, total, n_kind, tag;
    ngx_int_t     ret;
    ngx_str_t     channel, back, parts[FUZZ_PARTS];
    ngx_uint_t    i, k, n, sharded;
    redisReply   *reply;
    redisReader  *reader;

    /* the channel, and the name back from it */

    n_kind = strlen(kind);
    tag = (kind[n_kind - 1] == '{');

    len = ngx_ws_relay_wire_channel_len(prefix, kind, name);
    fuzz_assert(len == prefix->len + n_kind + name->len + tag);

    buf = malloc(len);
    fuzz_assert(buf != NULL);

    p = ngx_ws_relay_wire_channel(buf, prefix, kind, name);
    fuzz_assert(p == buf + len);
    fuzz_assert(!tag || buf[len - 1] == '}');

    channel.data = buf;
    channel.len = len;

    fuzz_slot(&channel);

    ret = ngx_ws_relay_wire_channel_name(&channel, prefix, kind, &back);

    if (name->len == 0) {
        fuzz_assert(ret == NGX_DECLINED);

    } else {
        fuzz_assert(ret == NGX_OK && back.len == name->len
                    && ngx_memcmp(back.data, name->data, name->len) == 0);
    }

    /* a channel of one kind is none of another */

    for (k = 0; k < FUZZ_KINDS; k++) {
        if (fuzz_kinds[k] != kind) {
            fuzz_assert(ngx_ws_relay_wire_channel_name(&channel, prefix,
                                                       fuzz_kinds[k], &back)
                        == NGX_DECLINED);
        }
    }

    /* PUBLISH, or with the byte's bit 7 SPUBLISH */

    s = in->pos < in->last ? *in->pos++ : 0;
    n = (s & 0x7f) % (FUZZ_PARTS + 1);
    sharded = s >> 7;
    total = 0;

    for (i = 0; i < n; i++) {
        fuzz_field(in, &parts[i]);
        total += parts[i].len;
    }

    len = ngx_ws_relay_wire_publish_len(prefix, kind, name, parts, n);

    q = malloc(len);
    fuzz_assert(q != NULL);

    p = ngx_ws_relay_wire_publish(q, prefix, kind, name, parts, n, sharded);
    fuzz_assert(p > q && (size_t) (p - q) <= len);

    reader = redisReaderCreate();
    fuzz_assert(reader != NULL);
    fuzz_assert(redisReaderFeed(reader, (char *) q, p - q) == REDIS_OK);

    r = NULL;
    rc = redisReaderGetReply(reader, &r);
    fuzz_assert(rc == REDIS_OK && r != NULL);

    /* one command, all of the bytes */
    fuzz_assert(reader->pos == reader->len);

    reply = r;

    fuzz_assert(reply->type == REDIS_REPLY_ARRAY && reply->elements == 3);
    fuzz_assert(sharded ? fuzz_is(reply->element[0], "SPUBLISH", 8)
                        : fuzz_is(reply->element[0], "PUBLISH", 7));
    fuzz_assert(fuzz_is(reply->element[1], channel.data, channel.len));
    fuzz_assert(reply->element[2]->type == REDIS_REPLY_STRING
                && reply->element[2]->len == total);

    p = (u_char *) reply->element[2]->str;

    for (i = 0; i < n; i++) {
        fuzz_assert(parts[i].len == 0
                    || ngx_memcmp(p, parts[i].data, parts[i].len) == 0);
        p += parts[i].len;
    }

    freeReplyObject(reply);
    redisReaderFree(reader);
    free(q);
    free(buf);
}


/*
 * A command of any arguments, any bytes, in a buffer of exactly
 * _command_len() bytes: hiredis's reader reads one array of bulk strings,
 * those arguments, and nothing more.
 */

static void
fuzz_command(fuzz_in_t *in)
{
    int           rc;
    void         *r;
    u_char       *buf, *p;
    size_t        len;
    ngx_str_t     args[FUZZ_ARGS];
    ngx_uint_t    i, n;
    redisReply   *reply;
    redisReader  *reader;

    n = in->pos < in->last ? *in->pos++ % (FUZZ_ARGS + 1) : 0;

    for (i = 0; i < n; i++) {
        fuzz_field(in, &args[i]);
    }

    len = ngx_ws_relay_wire_command_len(args, n);

    buf = malloc(len ? len : 1);
    fuzz_assert(buf != NULL);

    p = ngx_ws_relay_wire_command(buf, args, n);
    fuzz_assert(p > buf && (size_t) (p - buf) <= len);

    reader = redisReaderCreate();
    fuzz_assert(reader != NULL);
    fuzz_assert(redisReaderFeed(reader, (char *) buf, p - buf) == REDIS_OK);

    r = NULL;
    rc = redisReaderGetReply(reader, &r);
    fuzz_assert(rc == REDIS_OK && r != NULL);
    fuzz_assert(reader->pos == reader->len);

    reply = r;

    fuzz_assert(reply->type == REDIS_REPLY_ARRAY && reply->elements == n);

    for (i = 0; i < n; i++) {
        fuzz_assert(fuzz_is(reply->element[i], args[i].data, args[i].len));
    }

    freeReplyObject(reply);
    redisReaderFree(reader);
    free(buf);
}


/*
 * Three ids, each in a heap block of its own length: _id_compare() is an
 * order on them whatever their bytes (antisymmetric, 0 on an id and
 * itself, transitive), and on well-formed ids "<ms>-<seq>" (numbers of
 * 64 bits, maybe with leading zeros) the order of (ms, seq); _id_valid()
 * says which are stream ids.
 */

static void
fuzz_ids(fuzz_in_t *in)
{
    u_char      bufs[FUZZ_IDS][2 * NGX_WS_RELAY_ID_LEN];
    uint64_t    ms[FUZZ_IDS], seq[FUZZ_IDS];
    ngx_int_t   c[FUZZ_IDS][FUZZ_IDS], want;
    ngx_str_t   id[FUZZ_IDS];
    ngx_uint_t  i, j, k, good[FUZZ_IDS];

    for (i = 0; i < FUZZ_IDS; i++) {
        fuzz_id_make(in, &id[i], bufs[i]);
        good[i] = (fuzz_id_value(&id[i], &ms[i], &seq[i]) == NGX_OK);

        fuzz_assert((ngx_ws_relay_wire_id_valid(&id[i]) == NGX_OK)
                    == fuzz_id_stream(&id[i]));
    }

    for (i = 0; i < FUZZ_IDS; i++) {
        for (j = 0; j < FUZZ_IDS; j++) {
            c[i][j] = fuzz_sign(ngx_ws_relay_wire_id_compare(&id[i], &id[j]));
        }
    }

    for (i = 0; i < FUZZ_IDS; i++) {
        fuzz_assert(c[i][i] == 0);

        for (j = 0; j < FUZZ_IDS; j++) {
            fuzz_assert(c[i][j] == -c[j][i]);

            if (good[i] && good[j]) {
                want = (ms[i] != ms[j]) ? (ms[i] < ms[j] ? -1 : 1)
                       : (seq[i] != seq[j]) ? (seq[i] < seq[j] ? -1 : 1) : 0;
                fuzz_assert(c[i][j] == want);
            }

            for (k = 0; k < FUZZ_IDS; k++) {
                if (c[i][j] <= 0 && c[j][k] <= 0) {
                    fuzz_assert(c[i][k] <= 0);
                }

                if (c[i][j] == 0 && c[j][k] == 0) {
                    fuzz_assert(c[i][k] == 0);
                }
            }
        }
    }

    for (i = 0; i < FUZZ_IDS; i++) {
        free(id[i].data);
    }
}


/*
 * An id of a selector byte: 0-1 a since through _id_parse() (any field;
 * one it refuses is taken as it is), 2 "<ms>-<seq>" of two numbers, with
 * as many leading zeros as fit in NGX_WS_RELAY_ID_LEN, 3 any bytes
 */

static void
fuzz_id_make(fuzz_in_t *in, ngx_str_t *id, u_char *buf)
{
    u_char              *p, s;
    size_t               z1, z2, n1, n2;
    uint64_t             a, b;
    ngx_str_t            f;
    ngx_ws_relay_id_t    since;
    u_char               num1[NGX_INT64_LEN], num2[NGX_INT64_LEN];

    s = in->pos < in->last ? *in->pos++ : 0;

    switch (s & 3) {

    case 2:
        a = fuzz_u64(in);
        b = fuzz_u64(in);
        n1 = ngx_sprintf(num1, "%uL", a) - num1;
        n2 = ngx_sprintf(num2, "%uL", b) - num2;
        z1 = (s >> 2) & 7;
        z2 = s >> 5;

        while (n1 + z1 + 1 + n2 + z2 > NGX_WS_RELAY_ID_LEN) {
            if (z1) {
                z1--;

            } else {
                z2--;
            }
        }

        p = buf;
        p = ngx_cpymem(p, "000000000", z1);
        p = ngx_cpymem(p, num1, n1);
        *p++ = '-';
        p = ngx_cpymem(p, "000000000", z2);
        p = ngx_cpymem(p, num2, n2);

        f.data = buf;
        f.len = p - buf;
        break;

    case 3:
        fuzz_field(in, &f);
        f.len = ngx_min(f.len, 2 * NGX_WS_RELAY_ID_LEN);
        break;

    default:
        fuzz_field(in, &f);

        if (ngx_ws_relay_wire_id_parse(&f, &since) == NGX_OK) {
            ngx_memcpy(buf, since.data, since.len);
            f.data = buf;
            f.len = since.len;
        }
    }

    id->data = malloc(f.len ? f.len : 1);
    fuzz_assert(id->data != NULL);

    if (f.len) {
        ngx_memcpy(id->data, f.data, f.len);
    }

    id->len = f.len;
}


/* "<ms>-<seq>": digits, a dash, digits; each number within 64 bits */

static ngx_int_t
fuzz_id_value(ngx_str_t *id, uint64_t *ms, uint64_t *seq)
{
    u_char        *last;
    const u_char  *p;

    last = id->data + id->len;

    p = fuzz_number(id->data, last, ms);

    if (p == NULL || p == last || *p != '-') {
        return NGX_ERROR;
    }

    p = fuzz_number(p + 1, last, seq);

    return (p == last) ? NGX_OK : NGX_ERROR;
}


/* the oracle's stream id: 1 to 20 digits, a dash, 1 to 20 digits */

static ngx_uint_t
fuzz_id_stream(ngx_str_t *id)
{
    size_t  i, dash;

    dash = id->len;

    for (i = 0; i < id->len; i++) {
        if (id->data[i] == '-' && dash == id->len) {
            dash = i;

        } else if (id->data[i] < '0' || id->data[i] > '9') {
            return 0;
        }
    }

    return dash >= 1 && dash <= 20 && dash < id->len
           && id->len - dash - 1 >= 1 && id->len - dash - 1 <= 20;
}


static ngx_int_t
fuzz_sign(ngx_int_t rc)
{
    return (rc > 0) - (rc < 0);
}


/*
 * {...} becomes {...,"id":"<id>"}: for an object with members (what the
 * module writes), in exactly _id_text_len() bytes
 */

static void
fuzz_id_text(fuzz_in_t *in)
{
    u_char     *buf, *p;
    size_t      len;
    ngx_str_t   json, id;

    fuzz_field(in, &json);
    fuzz_field(in, &id);

    if (json.len < 3 || json.data[0] != '{' || json.data[json.len - 1] != '}')
    {
        return;
    }

    id.len = ngx_min(id.len, NGX_WS_RELAY_ID_LEN);

    len = ngx_ws_relay_wire_id_text_len(&json, &id);
    fuzz_assert(len == json.len + sizeof(",\"id\":\"\"") - 1 + id.len);

    buf = malloc(len);
    fuzz_assert(buf != NULL);

    p = ngx_ws_relay_wire_id_text(buf, &json, &id);
    fuzz_assert(p == buf + len);

    fuzz_assert(ngx_memcmp(buf, json.data, json.len - 1) == 0);
    p = buf + json.len - 1;
    fuzz_assert(ngx_memcmp(p, ",\"id\":\"", 7) == 0);
    fuzz_assert(id.len == 0 || ngx_memcmp(p + 7, id.data, id.len) == 0);
    fuzz_assert(ngx_memcmp(p + 7 + id.len, "\"}", 2) == 0);

    free(buf);
}


/*
 * The oracle's decimal: at least one digit, the value in 64 bits; NULL:
 * none, or too big.
 */

static const u_char *
fuzz_number(const u_char *p, const u_char *last, uint64_t *n)
{
    uint64_t      v;
    const u_char  *start;

    v = 0;

    for (start = p; p < last && isdigit(*p); p++) {
        if (__builtin_mul_overflow(v, 10, &v)
            || __builtin_add_overflow(v, (uint64_t) (*p - '0'), &v))
        {
            return NULL;
        }
    }

    *n = v;

    return (p > start) ? p : NULL;
}


static ngx_uint_t
fuzz_inside(ngx_str_t *part, ngx_str_t *whole)
{
    return part->data >= whole->data
           && part->data + part->len <= whole->data + whole->len;
}


static ngx_uint_t
fuzz_is(redisReply *r, const void *data, size_t len)
{
    return r->type == REDIS_REPLY_STRING
           && r->len == len
           && (len == 0 || memcmp(r->str, data, len) == 0);
}


/* a length byte and that many bytes, or what is left */

static void
fuzz_field(fuzz_in_t *in, ngx_str_t *s)
{
    size_t  n;

    n = (in->pos < in->last) ? *in->pos++ : 0;
    n = ngx_min(n, (size_t) (in->last - in->pos));

    s->data = (u_char *) in->pos;
    s->len = n;
    in->pos += n;
}


static uint64_t
fuzz_u64(fuzz_in_t *in)
{
    uint64_t    v;
    ngx_uint_t  i;

    v = 0;

    for (i = 0; i < 8 && in->pos < in->last; i++) {
        v = v << 8 | *in->pos++;
    }

    return v;
}

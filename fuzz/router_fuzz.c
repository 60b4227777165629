
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: the JSON message router, ngx_ws_relay_router_open(),
 * _message() and _close(), with the real registry, delivery, JSON and
 * history code (ngx_ws_relay_history.c: register and resume with a
 * "since"), four connections and the bus stubbed (Redis down, or up with
 * PUBLISH replies, acks, the history script's replies, its publications
 * and pages of replay as the input decides).
 *
 * Input: a settings byte, then (unless FUZZ_SINGLE) records separated by
 * 0xff bytes.  A record is a control byte and its payload:
 *
 *   settings bit 0   connection 0 is "alice" by ws_relay_user_id (fixed)
 *   settings bit 1   connection 1 is "bob" by ws_relay_user_id (fixed)
 *   settings bit 2   Redis is up: deliveries wait for PUBLISH and acks
 *   settings bit 3   the n-th allocation fails, n = the next byte + 1
 *   settings bit 4   connection 2 ("bob" by register) refuses frames
 *   settings bit 5   ws_relay_max_connections is 3: connection 3 is
 *                    refused (close 1013) until another one closes
 *   settings bit 6   connection 3 is by ws_relay_user_id a user whose id
 *                    is as long as one may be (256 bytes) and has quotes,
 *                    a backslash, control characters and UTF-8 in it (the
 *                    handshake lets only valid identities through)
 *   settings bit 7   the rest of the input is one message of connection 0
 *
 *   control bits 0-1 a connection (0-3; 3 has no user at first)
 *   control bits 2-4 0-3: the payload is a message of that connection
 *                    4: PUBLISH of delivery payload[0] answered with
 *                       (signed) payload[1] receivers (-1, a failure,
 *                       is 0xff, the separator: -2 is the same to the
 *                       module)
 *                    5: an ack for delivery payload[0] of payload[1]
 *                       connections
 *                    6: control bit 5 clear: the ack timeout passes;
 *                       set: an event of the history, control bits 6-7:
 *                       0 the bus hears the channel of the connection's
 *                         user (its SUBSCRIBE confirmed)
 *                       1 the oldest replay asked of Redis is answered
 *                         with a page: payload[0] bit 0 recovered, bit 1
 *                         more, bits 2-3 the newest id of the user's
 *                         history (0 the stream's, 1 "0-0", 2 a field of
 *                         any bytes, 3 the stream's with a quote after
 *                         it), then entries of a selector byte s and
 *                         what it takes: its id (s & 3) the next one of
 *                         the stream, the since asked for, a field of any
 *                         bytes, an id before any of the stream; its
 *                         JSON ((s >> 2) & 3) a message, a field of any
 *                         bytes, "[1]", a message of s >> 4 kilobytes;
 *                         the oldest ask for the newest id (the script's
 *                         "t") is answered with that id alone
 *                       2 the same, with the reply hiredis reads of the
 *                         payload (RESP; none: the link went, no reply)
 *                       3 the bus, as payload[0] % 6 says: 0 the
 *                         subscriber link is lost (the users' channels
 *                         are not heard, and what they miss meanwhile
 *                         is caught up with), 1 it is back; for the
 *                         kept delivery payload[1]: 2 the script
 *                         answers { id, (signed) payload[2] receivers },
 *                         the id the rest of the payload when there is
 *                         one (the bus takes only a stream id: another
 *                         is a failure), 3 it fails (an error, or no
 *                         reply), 4 its publication comes back; 5 the
 *                         wait for a channel (ws_relay_redis timeout)
 *                         passes
 *                    7: control bit 5: the connection closes and a new
 *                       one takes its place, in the location control bits
 *                       6-7 say (0 no history, 1 ws_relay_history, 2 with
 *                       resume_unverified=on, 3 that with a send buffer
 *                       of 256 bytes), as payload[0] says: 1-3 alice,
 *                       bob, carol by ws_relay_user_id, 4-5 alice, bob
 *                       by register, else nobody; without control bit 5
 *                       it starts or stops refusing frames
 *
 * Connections open through the router: the welcome (or the refusal at
 * capacity) is the reply due, and a user that is not fixed registers with
 * a message.  While a connection joins its user (wc->resume), what its
 * client sends waits, unread, as in ngx_ws_relay_conn.c, and is read once
 * ngx_ws_relay_conn_read_on() posted its read event, after the record.
 * Each message is also read by a model of the protocol (README,
 * "Wire protocol") that says which reply is due, with JSON as JavaScript
 * reads it (fuzz_json.h): the last of duplicate members counts, a field
 * that JavaScript calls falsy is as good as missing, values go out as
 * their text without white space (checked byte for byte, and by value), an
 * unknown type is named as String(type) names it, and user ids are strings
 * of WTF-8.  Every frame the router sends must be a JSON object with no
 * duplicate member and a string "type" ("error": with a string "message")
 * and be the reply due: one per message, the delivery results of one
 * connection in the order of its requests, with "delivered" and
 * "connections" the count of connections that took the message, and, for
 * a sender with history, "queued" (kept, and taken by none) and the id it
 * was kept as.  A delivered message goes to every connection of the
 * target, and only to them, with the right sender.  The registry is
 * checked against the connections after each record, and against what
 * the bus stand-ins were told (joined, left); the harness keeps its own
 * list of open connections to count them.
 *
 * The history (ngx_ws_relay_history.h), as a model: a "since" is "<ms>"
 * or "<ms>-<seq>" of 1 to 15 digits each, a string (of at most
 * NGX_WS_RELAY_ID_LEN bytes of JSON text), else the reply is an error; a
 * register with one, and a resume, are answered with "recovered" (false
 * when the user id is the client's and resume_unverified is off, or
 * there is no history); with history, the reply waits until the worker
 * hears the user's channel, or its wait passes, and then for the first
 * page of replay, {recovered, more, newest id, id, JSON, ...}, whose ids
 * are stream ids ("<ms>-<seq>", 1 to 20 digits each: anything else, and
 * the page is not taken, recovered false); the replayed messages follow
 * the reply, each with "id", in order, then what came live meanwhile and
 * was held; a connection that holds more than its send buffer closes
 * (1008).  Each connection has the newest kept message it was sent (or
 * the since it asked after, until it leaves its user): a kept message
 * that is not newer (ids compared as two numbers) it is not sent again,
 * replayed, held or live, and a live one counts as taken all the same; a
 * replay asks Redis for the connection's user after the since, then
 * after the last id of the page before.  A connection of a user set by
 * nginx joins it as it opens, silently.  The worker keeps, per user, the
 * newest id it heard (a kept message's publication, a page's newest id,
 * or the script's "t" answer, asked for when a join without a since
 * finds none): when the subscriber link comes back after a loss, the
 * live connections catch up, with no reply, after the newest kept message
 * each was sent (for any user id), or, one that had none yet and may be
 * replayed, after the newest id the worker heard.  A kept delivery's copies have "id" too.
 *
 * After the input every connection closes: nothing may be left in the
 * registry, in the timers, or in jansson's heap.  Once an allocation
 * failed, or a message has text that the oracle's images of surrogates
 * could be confused with (fuzz_json.h), replies may be missing or
 * different: only their form, the registry and the leaks are checked from
 * then on.
 */


#include "fuzz_ngx.h"
#include "fuzz_json.h"
#include "fuzz_reader.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_history.h"
#include "ngx_ws_relay_json.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"


#define FUZZ_CONNS           4
#define FUZZ_SEP             0xff

#define FUZZ_FIXED_0         0x01
#define FUZZ_FIXED_1         0x02
#define FUZZ_REDIS_UP        0x04
#define FUZZ_FAIL            0x08
#define FUZZ_REFUSE_2        0x10
#define FUZZ_CAPACITY        0x20
#define FUZZ_ODD_ID          0x40
#define FUZZ_SINGLE          0x80

#define FUZZ_OP_PUBLISHED    4
#define FUZZ_OP_ACK          5
#define FUZZ_OP_TIMEOUT      6
#define FUZZ_OP_CONN         7

/* with FUZZ_OP_TIMEOUT: an event of the history; FUZZ_OP_CONN: reopen */
#define FUZZ_CTL_EXTRA       0x20

#define FUZZ_H_SUBSCRIBED    0
#define FUZZ_H_PAGE          1
#define FUZZ_H_RAW           2
#define FUZZ_H_BUS           3

#define FUZZ_BUS_SUB_LOST    0
#define FUZZ_BUS_SUB_BACK    1
#define FUZZ_BUS_STORED      2
#define FUZZ_BUS_UNSTORED    3
#define FUZZ_BUS_ECHO        4
#define FUZZ_BUS_WAIT        5

/* entries of a page of replay the input describes, at most */
#define FUZZ_PAGE_ENTRIES    8

/* the first id of the stream of the history stand-in */
#define FUZZ_STREAM_MS       1733600000000ULL

/* an identity of 256 bytes (NGX_WS_RELAY_MAX_USER_ID) to be escaped */
#define FUZZ_ODD_USER                                                         \
    "\"q\\\x01\x7f\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\t"                   \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"        \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"        \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"        \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"



/* the members of a message that the protocol reads */
typedef enum {
    FUZZ_F_TYPE = 0,
    FUZZ_F_USER_ID,
    FUZZ_F_TARGET,
    FUZZ_F_TEXT,
    FUZZ_F_ACTION,
    FUZZ_F_DATA,
    FUZZ_F_SINCE,
    FUZZ_F_N
} fuzz_field_e;


typedef enum {
    FUZZ_REPLY_ERROR = 0,
    FUZZ_REPLY_WELCOME,
    FUZZ_REPLY_REGISTER,
    FUZZ_REPLY_RESUME,
    FUZZ_REPLY_PONG,
    FUZZ_REPLY_ECHO,
    FUZZ_REPLY_CHAT_DELIVERED,
    FUZZ_REPLY_NOTIFICATION_RESULT
} fuzz_reply_e;


typedef struct fuzz_pub_s     fuzz_pub_t;
typedef struct fuzz_expect_s  fuzz_expect_t;
typedef struct fuzz_out_s     fuzz_out_t;
typedef struct fuzz_ask_s     fuzz_ask_t;


/* a reply due to a connection */
struct fuzz_expect_s {
    fuzz_expect_t    *next;
    fuzz_reply_e      kind;
    ngx_str_t         error;
    /* the message's members, as JSON.parse() reads them; NULL: missing */
    json_t           *field[FUZZ_F_N];
    /* and their text without white space */
    ngx_str_t         compact[FUZZ_F_N];
    /* the sender as the router must name it */
    ngx_str_t         sender;
    fuzz_pub_t       *pub;

    /* register, resume: "recovered" true, false, -1: none */
    ngx_int_t         recovered;
    /* the page of replay said it: going live does not change it */
    ngx_uint_t        settled;
    /* the reply waits (the history), and what the connection waits for */
    ngx_uint_t        deferred;
    ngx_uint_t        replay;
    ngx_uint_t        refused;
    ngx_uint_t        waiting;
    ngx_uint_t        reading;
    /* the since, as ngx_ws_relay_wire_id_parse() writes it */
    u_char            since[NGX_WS_RELAY_ID_LEN];
    size_t            since_len;
};


/* a delivery, as the model says it goes */
struct fuzz_pub_s {
    fuzz_pub_t       *next;
    /* 0: Redis was down, the delivery ended at once */
    uint64_t          id;
    ngx_int_t         expected;
    ngx_uint_t        answered;
    ngx_uint_t        acks;
    ngx_uint_t        delivered;
    ngx_uint_t        done;
    fuzz_expect_t    *expect;

    /* the text and target the bus was given */
    ngx_str_t         text;
    ngx_str_t         target;
    /* the sender has history: the reply says "queued" */
    ngx_uint_t        history;
    /* a chat: settled by the first connection it reaches */
    ngx_uint_t        chat;
    /* the history script was asked to keep it */
    ngx_uint_t        script;
    /* its publication came back */
    ngx_uint_t        echoed;
    /* the module knows its id: kept */
    ngx_uint_t        stored;
    /* the id Redis gave it; none yet: len 0 */
    u_char            hid[NGX_WS_RELAY_ID_LEN];
    size_t            hid_len;
};


typedef struct {
    fuzz_expect_t    *head;
    fuzz_expect_t    *tail;
} fuzz_fifo_t;


/* what happens while one message is handled */
typedef struct {
    fuzz_conn_t      *conn;
    fuzz_expect_t    *immediate;
    ngx_uint_t        answered;
    fuzz_expect_t    *deliver;
} fuzz_call_t;


/* the copies of a delivery going out to this worker's connections */
typedef struct {
    fuzz_pub_t       *pub;
    ngx_str_t         text;
    /* its delivery is not over: the copies count */
    ngx_uint_t        counting;
    ngx_uint_t        want[FUZZ_CONNS];
    ngx_uint_t        calls[FUZZ_CONNS];
    /* the connections that close, holding too much */
    ngx_uint_t        overflow[FUZZ_CONNS];
    /* those that took it: held, or sent */
    ngx_uint_t        taken;
} fuzz_copies_t;


/* a text a connection is to get: replayed, or held and sent */
struct fuzz_out_s {
    fuzz_out_t       *next;
    ngx_str_t         text;
    /* its id, for a held one */
    ngx_str_t         id;
    /* the model cannot say whether it is sent (ids it cannot compare) */
    ngx_uint_t        optional;
    /* it is a JSON object: a stored message that was one, with its id */
    ngx_uint_t        form;
};


/* what the history does for a connection that registers or resumes */
typedef struct {
    /* wc->resume is set: live messages are held */
    ngx_uint_t        resuming;
    ngx_uint_t        replay;
    ngx_uint_t        refused;
    /* for the user's channel, until the deadline */
    ngx_uint_t        waiting;
    ngx_msec_t        deadline;
    /* for a page of replay, or (top) for the newest id of the history */
    ngx_uint_t        reading;
    ngx_uint_t        top;
    /* the reply to the register or resume, while it is due */
    fuzz_expect_t    *join;
    /* the newest id the connection has */
    u_char            since[NGX_WS_RELAY_ID_LEN];
    size_t            since_len;
    /*
     * the newest kept message it was sent, or the since it asked after
     * (wc->last_id); none: len 0
     */
    u_char            last[NGX_WS_RELAY_ID_LEN];
    size_t            last_len;
    /* held: text and id */
    fuzz_out_t       *held;
    fuzz_out_t      **held_tail;
    size_t            held_bytes;
    /* to be sent, in order */
    fuzz_out_t       *out;
    fuzz_out_t      **out_tail;
} fuzz_hist_t;


/* a replay asked of Redis, waiting for its reply */
struct fuzz_ask_s {
    fuzz_ask_t                 *next;
    ngx_ws_relay_bus_reply_pt   fn;
    void                       *privdata;
    /* the connection; -1: it went meanwhile */
    ngx_int_t                   conn;
    /* the newest id ("t"), not a page ("r") */
    ngx_uint_t                  top;
};


/* what the model knows of a user of the registry */
typedef struct {
    ngx_str_t         id;
    /* the bus hears its channel (user->subscribed) */
    ngx_uint_t        heard;
    /* it was heard when the subscriber link went (user->missed) */
    ngx_uint_t        missed;
    /* the newest id of its history the worker heard (user->last_id) */
    u_char            last[NGX_WS_RELAY_ID_LEN];
    size_t            last_len;
} fuzz_user_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_setup(u_char settings);
static void fuzz_teardown(void);
static void fuzz_record(const u_char *p, size_t len);
static ngx_uint_t fuzz_read_on(void);
static void fuzz_open(ngx_uint_t i, const char *user, ngx_uint_t fixed);
static void fuzz_join_fixed(ngx_uint_t i);
static void fuzz_register(ngx_uint_t i, const char *user);
static void fuzz_close(ngx_uint_t i);
static void fuzz_message(ngx_uint_t i, const u_char *data, size_t len);
static fuzz_expect_t *fuzz_expect(fuzz_conn_t *fc, const u_char *data,
    size_t len);
static ngx_uint_t fuzz_since(fuzz_doc_t *doc, fuzz_expect_t *e);
static void fuzz_join(fuzz_conn_t *fc, fuzz_expect_t *e, json_t *user);
static void fuzz_expect_error(fuzz_expect_t *e, const void *text,
    size_t len);
static void fuzz_expect_free(fuzz_expect_t *e);
static fuzz_pub_t *fuzz_pub_get(u_char k, ngx_uint_t which);
static ngx_uint_t fuzz_pub_settled(fuzz_pub_t *pub);
static void fuzz_pub_copies(fuzz_pub_t *pub, ngx_str_t *text,
    ngx_str_t *hid);
static void fuzz_pub_copies_done(void);
static void fuzz_check_reply(fuzz_expect_t *e, fuzz_doc_t *reply,
    fuzz_conn_t *fc);
static void fuzz_check_delivery(fuzz_expect_t *e, fuzz_doc_t *doc);
static void fuzz_check_form(fuzz_doc_t *doc);
static ngx_uint_t fuzz_text_is(fuzz_doc_t *doc, const char *name,
    u_char *text, size_t len);
static void fuzz_check_after(void);
static void fuzz_check_registry(void);
static ngx_uint_t fuzz_lenient(void);
static ngx_uint_t fuzz_str_is(json_t *json, const char *key,
    const void *value, size_t len);
static ngx_uint_t fuzz_int_is(fuzz_doc_t *doc, const char *key,
    json_int_t value);
static ngx_uint_t fuzz_user_is(fuzz_conn_t *fc, json_t *user);
static ngx_uint_t fuzz_conn_of(fuzz_conn_t *fc, ngx_str_t *user_id);
static ngx_uint_t fuzz_str_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_str_t *fuzz_sender(fuzz_conn_t *fc);
static void fuzz_str_dup(ngx_str_t *dst, ngx_str_t *src);

static void fuzz_history_event(ngx_uint_t i, ngx_uint_t ev, const u_char *p,
    size_t len);
static void fuzz_time(ngx_msec_t ms);
static void fuzz_subscribed(ngx_uint_t i);
static void fuzz_answer(redisReply *reply);
static void fuzz_page(const u_char *p, size_t len);
static void fuzz_raw_page(const u_char *p, size_t len);
static void fuzz_bus(const u_char *p, size_t len);
static void fuzz_script_reply(fuzz_pub_t *pub, ngx_int_t receivers,
    const u_char *id, size_t len, ngx_uint_t good);
static void fuzz_echo(fuzz_pub_t *pub);
static void fuzz_hist_end(ngx_uint_t k, ngx_int_t recovered);
static ngx_uint_t fuzz_hist_new(fuzz_hist_t *h, ngx_str_t *id);
static void fuzz_hist_clear(ngx_uint_t k);
static void fuzz_out_add(fuzz_out_t ***tail, ngx_str_t *text, ngx_str_t *id,
    ngx_uint_t optional, ngx_uint_t form);
static void fuzz_out_free(fuzz_out_t **list);
static ngx_uint_t fuzz_out_take(fuzz_hist_t *h, u_char *data, size_t len,
    ngx_uint_t *form);
static ngx_int_t fuzz_id_cmp(ngx_str_t *a, ngx_str_t *b, ngx_uint_t *known);
static ngx_uint_t fuzz_id_value(ngx_str_t *id, unsigned __int128 *ms,
    unsigned __int128 *seq);
static ngx_uint_t fuzz_id_ok(ngx_str_t *id);
static void fuzz_next_hid(u_char *buf, size_t *len);
static void fuzz_newest_hid(u_char *buf, size_t *len);
static fuzz_user_t *fuzz_user(ngx_str_t *id, ngx_uint_t create);
static void fuzz_user_drop(ngx_str_t *id);
static void fuzz_user_heard(ngx_str_t *user, ngx_str_t *id);
static ngx_uint_t fuzz_is_subscribed(json_t *user, ngx_str_t *id);
static void fuzz_subscribed_set(ngx_str_t *id, ngx_uint_t on);


static fuzz_conn_t  *fuzz_conns[FUZZ_CONNS];
static fuzz_fifo_t   fuzz_fifos[FUZZ_CONNS];
static fuzz_hist_t   fuzz_hists[FUZZ_CONNS];
static fuzz_pub_t   *fuzz_pubs;
static fuzz_call_t   fuzz_call;
static fuzz_copies_t fuzz_copies;
static fuzz_ask_t   *fuzz_asks;
static ngx_uint_t    fuzz_serial;
static ngx_uint_t    fuzz_redis_up;
/* the subscriber link is ready (with fuzz_redis_up: the bus is up) */
static ngx_uint_t    fuzz_sub_up;
/* a message had text the oracle could confuse: lenient from then on */
static ngx_uint_t    fuzz_collided;
/* the connections the router took (not refused at capacity) */
static ngx_uint_t    fuzz_taken[FUZZ_CONNS];
static uint64_t      fuzz_last_id;
/* the ids the stream stand-in gives */
static ngx_uint_t    fuzz_stream_seq;

/* users the bus stand-ins were told about */
static ngx_str_t     fuzz_joined[FUZZ_CONNS + 1];
static ngx_uint_t    fuzz_njoined;

/* the users of the registry, as the model has them */
static fuzz_user_t   fuzz_users[FUZZ_CONNS + 1];
static ngx_uint_t    fuzz_nusers;

/*
 * the locations: no history; ws_relay_history size=100 ttl=1d
 * meta_ttl=7d; with resume_unverified=on; with a send buffer of 256
 */
static ngx_ws_relay_loc_conf_t  fuzz_locs[4];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_uint_t  i;

    fuzz_assert(strlen(FUZZ_ODD_USER) == NGX_WS_RELAY_MAX_USER_ID);

    for (i = 1; i < 4; i++) {
        fuzz_locs[i].history.size = 100;
        fuzz_locs[i].history.ttl = 86400000;
        fuzz_locs[i].history.meta_ttl = 7 * 86400000;
        fuzz_locs[i].history.unverified = (i >= 2);
        fuzz_locs[i].send_buffer = (i == 3) ? 256 : 65536;
    }

    fuzz_ngx_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t         n;
    ngx_uint_t     fail;
    const u_char  *p, *last, *sep;

    if (size == 0) {
        return 0;
    }

    p = data + 1;
    last = data + size;
    fail = 0;

    if (data[0] & FUZZ_FAIL) {
        if (p == last) {
            return 0;
        }

        fail = *p++ + 1;
    }

    fuzz_setup(data[0]);
    fuzz_fail_alloc(fail);

    if (data[0] & FUZZ_SINGLE) {
        fuzz_message(0, p, last - p);

    } else {
        while (p < last) {
            sep = ngx_strlchr((u_char *) p, (u_char *) last, FUZZ_SEP);
            n = (sep ? sep : last) - p;

            if (n) {
                fuzz_record(p, n);
            }

            p += n + 1;
        }
    }

    fuzz_teardown();

    return 0;
}


static void
fuzz_setup(u_char settings)
{
    ngx_uint_t  i;

    fuzz_redis_up = (settings & FUZZ_REDIS_UP) ? 1 : 0;
    fuzz_sub_up = fuzz_redis_up;
    fuzz_collided = 0;
    fuzz_serial = 0;
    fuzz_last_id = 0;
    fuzz_stream_seq = 0;

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_hist_clear(i);
    }

    fuzz_main_conf.max_connections = (settings & FUZZ_CAPACITY) ? 3 : 4000;

    /* the connections of the settings have no history */
    fuzz_conn_conf = &fuzz_locs[0];

    fuzz_open(0, "alice", settings & FUZZ_FIXED_0);
    fuzz_open(1, "bob", settings & FUZZ_FIXED_1);
    fuzz_open(2, "bob", 0);
    fuzz_open(3, (settings & FUZZ_ODD_ID) ? FUZZ_ODD_USER : NULL, 1);

    fuzz_conns[2]->refuse = (settings & FUZZ_REFUSE_2) ? 1 : 0;

    fuzz_check_registry();
}


static void
fuzz_teardown(void)
{
    ngx_uint_t   i, n, read;
    fuzz_pub_t  *pub;

    /*
     * deliveries still waiting for acks time out, and so do the waits for
     * a user's channel; then the replays still asked get no reply, as
     * when the worker exits; the messages that waited meanwhile are read,
     * and what they start ends the same way
     */

    for (n = 0; /* void */ ; n++) {

        /* each turn reads at least one message that waited */
        fuzz_assert(n < 100000);

        for (pub = fuzz_pubs; pub; pub = pub->next) {
            pub->done = 1;
        }

        fuzz_time(ngx_max(fuzz_main_conf.redis.ack_timeout,
                          fuzz_main_conf.redis.timeout));

        while (fuzz_asks) {
            fuzz_answer(NULL);
        }

        read = fuzz_read_on();
        fuzz_check_after();

        for (i = 0; i < FUZZ_CONNS; i++) {
            if (fuzz_conns[i]->wc.resume) {
                break;
            }
        }

        if (i == FUZZ_CONNS && fuzz_asks == NULL && read == 0) {
            break;
        }
    }

    if (!fuzz_lenient()) {
        /* every message got its reply */
        for (i = 0; i < FUZZ_CONNS; i++) {
            fuzz_assert(fuzz_fifos[i].head == NULL);
            fuzz_assert(fuzz_hists[i].join == NULL);
            fuzz_assert(!fuzz_hists[i].resuming);
        }
    }

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_close(i);
    }

    fuzz_assert(ngx_ws_relay_registry_connections() == 0);
    fuzz_assert(ngx_queue_empty(ngx_ws_relay_registry_users()));
    fuzz_assert(fuzz_slot.connections == 0 && fuzz_slot.users == 0);
    fuzz_assert(fuzz_njoined == 0);
    fuzz_assert(fuzz_asks == NULL);

    while (fuzz_pubs) {
        pub = fuzz_pubs;
        fuzz_pubs = pub->next;
        fuzz_assert(pub->expect == NULL);
        free(pub->text.data);
        free(pub->target.data);
        free(pub);
    }

    /* every user left */
    fuzz_assert(fuzz_nusers == 0);

    fuzz_conn_conf = NULL;

    /* every jansson value the router made is freed: no reference leaks */
    fuzz_assert(fuzz_json_live() == 0);

    fuzz_ngx_reset();
}


static void
fuzz_record(const u_char *p, size_t len)
{
    u_char        ctl, k, v;
    ngx_uint_t    i, op, who;
    fuzz_pub_t   *pub;
    fuzz_conn_t  *fc;

    static const char  *users[] = { "alice", "bob", "carol" };

    ctl = p[0];
    i = ctl & 3;
    op = (ctl >> 2) & 7;
    p++;
    len--;

    k = len > 0 ? p[0] : 0;
    v = len > 1 ? p[1] : 0;

    switch (op) {

    case FUZZ_OP_PUBLISHED:
        /* a plain PUBLISH's reply: the script's come as history events */
        pub = fuzz_pub_get(k, 1);

        if (pub) {
            pub->answered = 1;

            if (!pub->done) {
                pub->expected = ngx_max((signed char) v, 0);
                pub->done = (pub->acks >= (ngx_uint_t) pub->expected);
            }

            ngx_ws_relay_delivery_published(pub->id, (signed char) v);
        }

        break;

    case FUZZ_OP_ACK:
        pub = fuzz_pub_get(k, 0);

        if (pub) {
            if (!pub->done) {
                pub->acks++;
                pub->delivered += v;
                pub->done = (pub->expected >= 0
                             && pub->acks >= (ngx_uint_t) pub->expected)
                            || fuzz_pub_settled(pub);
            }

            ngx_ws_relay_delivery_acked(pub->id, v);

        } else {
            /* an ack for nothing of ours */
            ngx_ws_relay_delivery_acked((uint64_t) k << 32 | v, v);
        }

        break;

    case FUZZ_OP_TIMEOUT:
        if (ctl & FUZZ_CTL_EXTRA) {
            fuzz_history_event(i, ctl >> 6, p, len);
            break;
        }

        for (pub = fuzz_pubs; pub; pub = pub->next) {
            pub->done = 1;
        }

        fuzz_time(fuzz_main_conf.redis.ack_timeout);
        break;

    case FUZZ_OP_CONN:
        if (ctl & FUZZ_CTL_EXTRA) {
            fuzz_close(i);

            fuzz_conn_conf = &fuzz_locs[ctl >> 6];
            who = (len > 0) ? k : 0;

            if (who >= 1 && who <= 3) {
                fuzz_open(i, users[who - 1], 1);

            } else if (who >= 4 && who <= 5) {
                fuzz_open(i, users[who - 4], 0);

            } else {
                fuzz_open(i, NULL, 0);
            }

            fuzz_conn_conf = &fuzz_locs[0];

        } else {
            fuzz_conns[i]->refuse = !fuzz_conns[i]->refuse;
        }

        break;

    default:
        fc = fuzz_conns[i];

        /*
         * a connection refused or closed reads no more; one that joins its
         * user reads later
         */
        if (fc->close_code == 0 && !fuzz_conn_waits(fc, p, len)) {
            fuzz_message(i, p, len);
        }
    }

    (void) fuzz_read_on();
    fuzz_check_after();
}


/*
 * The read events that ngx_ws_relay_conn_read_on() posted: what waited is
 * read, until the connection joins its user again.  How many were read.
 */

static ngx_uint_t
fuzz_read_on(void)
{
    ngx_uint_t    n;
    fuzz_conn_t  *fc;
    fuzz_wait_t  *w;

    n = 0;

    while ((fc = fuzz_conn_posted())) {
        fuzz_assert(fuzz_conns[fc->index] == fc);

        while ((w = fuzz_conn_unwait(fc))) {
            fuzz_message(fc->index, w->data, w->len);
            free(w);
            n++;
        }
    }

    return n;
}


static void
fuzz_open(ngx_uint_t i, const char *user, ngx_uint_t fixed)
{
    ngx_int_t       rc;
    ngx_str_t       id;
    ngx_uint_t      refused, k, n;
    fuzz_conn_t    *fc;
    fuzz_expect_t  *e;

    /* on the heap: a connection that is gone is gone for ASan too */
    fc = malloc(sizeof(fuzz_conn_t));
    fuzz_assert(fc != NULL);

    fuzz_conns[i] = fc;

    n = 0;
    for (k = 0; k < FUZZ_CONNS; k++) {
        n += fuzz_taken[k];
    }

    refused = (n >= fuzz_main_conf.max_connections);
    fuzz_taken[i] = !refused;

    e = calloc(1, sizeof(fuzz_expect_t));
    fuzz_assert(e != NULL);

    if (refused) {
        fuzz_expect_error(e, "Server is at capacity, please try again later",
                          0);

    } else {
        e->kind = FUZZ_REPLY_WELCOME;
    }

    ngx_memzero(&fuzz_call, sizeof(fuzz_call_t));
    fuzz_call.conn = fc;
    fuzz_call.immediate = e;

    id.data = (u_char *) user;
    id.len = user ? ngx_strlen(user) : 0;

    rc = fuzz_conn_open(fc, i, ++fuzz_serial, (user && fixed) ? &id : NULL);

    fuzz_assert(fuzz_call.answered == 1 || fuzz_lenient());
    fuzz_assert(rc == (refused ? NGX_DECLINED : NGX_OK) || fuzz_lenient());
    fuzz_assert(fc->close_code == (refused ? 1013 : 0));

    ngx_memzero(&fuzz_call, sizeof(fuzz_call_t));
    fuzz_expect_free(e);

    if (fixed && rc == NGX_OK && !fuzz_lenient()) {
        /* the identity the handshake checked, or none */
        if (user) {
            fuzz_assert(id.len <= NGX_WS_RELAY_MAX_USER_ID);
            fuzz_assert(fc->wc.user_fixed && fc->wc.user
                        && fc->wc.user->sn.str.len == id.len
                        && ngx_memcmp(fc->wc.user->sn.str.data, id.data,
                                      id.len) == 0);

        } else {
            fuzz_assert(!fc->wc.user_fixed && fc->wc.user == NULL);
        }
    }

    if (user && fixed && rc == NGX_OK && fc->wc.user
        && fc->wc.conf->history.size)
    {
        fuzz_join_fixed(i);
    }

    if (user && !fixed && rc == NGX_OK) {
        fuzz_register(i, user);
    }

    fuzz_check_registry();
}


/*
 * A connection of a user set by nginx, in a location with history, joins
 * its user as it opens (ngx_ws_relay_router_open()): with nothing to
 * answer, and nothing to replay, it is live once the worker hears the
 * user's channel, or the wait for it passes.
 */

static void
fuzz_join_fixed(ngx_uint_t i)
{
    fuzz_hist_t  *h;
    fuzz_conn_t  *fc;

    fc = fuzz_conns[i];
    h = &fuzz_hists[i];

    if (!(fuzz_redis_up && fuzz_sub_up)
        || fuzz_is_subscribed(NULL, &fc->wc.user->sn.str))
    {
        return;
    }

    h->resuming = 1;
    h->waiting = 1;
    h->deadline = ngx_current_msec + fuzz_main_conf.redis.timeout;
}


/* what a client sends to take a user id */

static void
fuzz_register(ngx_uint_t i, const char *user)
{
    u_char  buf[64], *p;

    p = ngx_snprintf(buf, sizeof(buf),
                     "{\"type\":\"register\",\"userId\":\"%s\"}", user);

    fuzz_message(i, buf, p - buf);
}


static void
fuzz_close(ngx_uint_t i)
{
    fuzz_ask_t     *ask;
    fuzz_conn_t    *fc;
    fuzz_expect_t  *e;

    fc = fuzz_conns[i];

    fuzz_taken[i] = 0;
    fuzz_conn_close(fc);

    /* it went: no reply, no replay, and its page is for nobody */
    fuzz_assert(fc->wc.resume == NULL);

    for (ask = fuzz_asks; ask; ask = ask->next) {
        if (ask->conn == (ngx_int_t) i) {
            ask->conn = -1;
        }
    }

    fuzz_hist_clear(i);

    while (fuzz_fifos[i].head) {
        e = fuzz_fifos[i].head;
        fuzz_fifos[i].head = e->next;
        fuzz_expect_free(e);
    }

    fuzz_fifos[i].tail = NULL;

    free(fc);
    fuzz_conns[i] = NULL;

    fuzz_check_registry();
}


static void
fuzz_message(ngx_uint_t i, const u_char *data, size_t len)
{
    u_char         *copy;
    json_t         *user, *target;
    ngx_uint_t      k, lenient, deliver, join;
    fuzz_conn_t    *fc;
    fuzz_fifo_t    *fifo;
    fuzz_hist_t    *h;
    fuzz_expect_t  *e;

    fc = fuzz_conns[i];
    fifo = &fuzz_fifos[i];
    h = &fuzz_hists[i];
    lenient = fuzz_lenient();

    /* ngx_ws_relay_conn.c reads nothing while the connection joins */
    fuzz_assert(fc->wc.resume == NULL);

    e = fuzz_expect(fc, data, len);

    /* a delivery's expectation goes with its reply, maybe during the call */
    deliver = (e->pub != NULL);
    join = e->deferred;
    user = json_incref(e->field[FUZZ_F_USER_ID]);
    target = json_incref(e->field[FUZZ_F_TARGET]);

    ngx_memzero(&fuzz_call, sizeof(fuzz_call_t));
    fuzz_call.conn = fc;

    if (deliver) {
        /* queued now: a delivery done at once replies during the call */
        fuzz_call.deliver = e;

        if (fifo->tail) {
            fifo->tail->next = e;

        } else {
            fifo->head = e;
        }

        fifo->tail = e;

    } else if (join && !lenient) {
        /* the reply comes later, from the history */
        h->join = e;
        h->resuming = 1;
        h->replay = e->replay;
        h->refused = e->refused;
        h->waiting = e->waiting;
        h->reading = e->reading;
        h->deadline = ngx_current_msec + fuzz_main_conf.redis.timeout;
        ngx_memcpy(h->since, e->since, e->since_len);
        h->since_len = e->since_len;

    } else {
        fuzz_call.immediate = e;
    }

    /* a buffer of its own, of the exact size: ASan sees any overread */
    copy = malloc(len ? len : 1);
    fuzz_assert(copy != NULL);
    ngx_memcpy(copy, data, len);

    ngx_ws_relay_router_message(&fc->wc, copy, len);

    free(copy);

    if (!lenient && !fuzz_lenient()) {

        if (deliver) {
            /* the target's connections, each once, and no other */
            for (k = 0; k < FUZZ_CONNS; k++) {
                fuzz_assert(fuzz_copies.calls[k] == fuzz_copies.want[k]);
            }

        } else if (join) {
            /* the reply waits */
            fuzz_assert(fuzz_call.answered == 0 && h->join == e);

        } else {
            fuzz_assert(fuzz_call.answered == 1);

            if (e->kind == FUZZ_REPLY_REGISTER) {
                fuzz_assert(fuzz_user_is(fc, user));
            }
        }
    }

    if (deliver) {
        fuzz_pub_copies_done();
    }

    ngx_memzero(&fuzz_call, sizeof(fuzz_call_t));

    if (!deliver && !(join && !lenient)) {
        fuzz_expect_free(e);
    }

    json_decref(user);
    json_decref(target);

    fuzz_check_after();
}


/* the protocol's answer to a message, from the README */

static fuzz_expect_t *
fuzz_expect(fuzz_conn_t *fc, const u_char *data, size_t len)
{
    json_t          *type, *field;
    ngx_uint_t       i, route, since_ok;
    fuzz_buf_t       b;
    fuzz_doc_t       doc;
    fuzz_pub_t      *pub;
    fuzz_member_t   *m;
    fuzz_expect_t   *e;

    static const char  *names[] = {
        "type", "userId", "targetUserId", "text", "action", "data", "since"
    };

    static const char  *routes[] = {
        "register", "ping", "chat", "notification", "resume", NULL
    };

    fuzz_fail_pause(1);

    e = calloc(1, sizeof(fuzz_expect_t));
    fuzz_assert(e != NULL);

    e->recovered = -1;

    fuzz_str_dup(&e->sender, fuzz_sender(fc));

    fuzz_doc_read(&doc, data, len);

    if (doc.collide_chars || doc.collide_marker) {
        fuzz_collided = 1;
    }

    if (!fuzz_doc_fits(&doc) || !json_is_object(doc.json)) {
        fuzz_expect_error(e, "Invalid message format", 0);
        goto done;
    }

    for (i = 0; i < FUZZ_F_N; i++) {
        m = fuzz_doc_member(&doc, (u_char *) names[i], strlen(names[i]),
                            FUZZ_JSON_ANY_KEY);
        if (m == NULL) {
            continue;
        }

        e->field[i] = fuzz_doc_value(&doc, m);

        e->compact[i].data = malloc(m->value_len);
        fuzz_assert(e->compact[i].data != NULL);
        e->compact[i].len = fuzz_compact(e->compact[i].data,
                                         doc.text + m->value, m->value_len);
    }

    type = e->field[FUZZ_F_TYPE];

    for (route = 0; routes[route]; route++) {
        if (json_is_string(type)
            && fuzz_json_is_wtf8(type, (u_char *) routes[route],
                                 strlen(routes[route])))
        {
            break;
        }
    }

    /* a resume is a type unknown without history, as to the old server */

    if (route == 4 && !fc->wc.conf->history.size) {
        route = 5;
    }

    switch (route) {

    case 0:
        field = e->field[FUZZ_F_USER_ID];
        since_ok = fuzz_since(&doc, e);

        if (fuzz_js_falsy(field)) {
            fuzz_expect_error(e, "Missing userId in register message", 0);

        } else if (!json_is_string(field)) {
            fuzz_expect_error(e, "userId must be a string", 0);

        } else if (json_string_length(field) > NGX_WS_RELAY_MAX_USER_ID) {
            fuzz_expect_error(e, "userId is too long", 0);

        } else if (!since_ok) {
            fuzz_expect_error(e, "since must be a message id", 0);

        } else if (fc->wc.user_fixed && !fuzz_user_is(fc, field)) {
            fuzz_expect_error(e, "Cannot register as another user: "
                                 "the user id is set by the server", 0);

        } else {
            e->kind = FUZZ_REPLY_REGISTER;
            fuzz_join(fc, e, field);
        }

        break;

    case 1:
        e->kind = FUZZ_REPLY_PONG;
        break;

    case 2:
        field = e->field[FUZZ_F_TARGET];

        if (fuzz_js_falsy(field)) {
            e->kind = FUZZ_REPLY_ECHO;

        } else if (!json_is_string(field)) {
            fuzz_expect_error(e, "targetUserId must be a string", 0);

        } else if (json_string_length(field) > NGX_WS_RELAY_MAX_USER_ID) {
            fuzz_expect_error(e, "targetUserId is too long", 0);

        } else {
            e->kind = FUZZ_REPLY_CHAT_DELIVERED;
        }

        break;

    case 3:
        field = e->field[FUZZ_F_TARGET];

        if (fuzz_js_falsy(field)) {
            fuzz_expect_error(e,
                              "Missing targetUserId in notification message",
                              0);

        } else if (!json_is_string(field)) {
            fuzz_expect_error(e, "targetUserId must be a string", 0);

        } else if (json_string_length(field) > NGX_WS_RELAY_MAX_USER_ID) {
            fuzz_expect_error(e, "targetUserId is too long", 0);

        } else {
            e->kind = FUZZ_REPLY_NOTIFICATION_RESULT;
        }

        break;

    case 4:
        /* a since is due, and a user */
        since_ok = fuzz_since(&doc, e) && e->field[FUZZ_F_SINCE] != NULL;

        if (!since_ok) {
            fuzz_expect_error(e, "since must be a message id", 0);

        } else if (fc->wc.user == NULL) {
            fuzz_expect_error(e, "Resume needs a registered user", 0);

        } else {
            e->kind = FUZZ_REPLY_RESUME;
            fuzz_join(fc, e, NULL);
        }

        break;

    default:
        /* `Unsupported message type: ${type}` */
        ngx_memzero(&b, sizeof(fuzz_buf_t));
        fuzz_buf_add(&b, "Unsupported message type: ",
                     sizeof("Unsupported message type: ") - 1);
        fuzz_js_string(&b, type);
        fuzz_expect_error(e, b.data, b.len);
        fuzz_buf_free(&b);
    }

    if (e->kind == FUZZ_REPLY_CHAT_DELIVERED
        || e->kind == FUZZ_REPLY_NOTIFICATION_RESULT)
    {
        pub = calloc(1, sizeof(fuzz_pub_t));
        fuzz_assert(pub != NULL);

        pub->expected = -1;
        pub->expect = e;
        pub->next = fuzz_pubs;
        pub->history = (fc->wc.conf->history.size != 0);
        pub->chat = (e->kind == FUZZ_REPLY_CHAT_DELIVERED);
        fuzz_pubs = pub;

        e->pub = pub;
    }

done:

    fuzz_doc_free(&doc);
    fuzz_fail_pause(0);

    return e;
}


/*
 * "since", if the message has one: a string of "<ms>" or "<ms>-<seq>",
 * 1 to 15 digits each, which e->since has as "<ms>-<seq>".  The module
 * reads at most NGX_WS_RELAY_ID_LEN bytes of JSON text between the quotes
 * (an id written with escapes may be longer: it is refused).  0: not so.
 */

static ngx_uint_t
fuzz_since(fuzz_doc_t *doc, fuzz_expect_t *e)
{
    size_t          i, n, d[2];
    json_t         *since;
    ngx_uint_t      part;
    const char     *s;
    fuzz_member_t  *m;

    since = e->field[FUZZ_F_SINCE];

    if (since == NULL) {
        return 1;
    }

    if (!json_is_string(since)) {
        return 0;
    }

    m = fuzz_doc_member(doc, (u_char *) "since", 5, FUZZ_JSON_ANY_KEY);
    fuzz_assert(m != NULL);

    if (m->value_len - 2 > NGX_WS_RELAY_ID_LEN) {
        return 0;
    }

    s = json_string_value(since);
    n = json_string_length(since);
    part = 0;
    d[0] = 0;
    d[1] = 0;

    for (i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            d[part]++;

        } else if (s[i] == '-' && part == 0) {
            part = 1;

        } else {
            return 0;
        }
    }

    if (d[0] < 1 || d[0] > 15 || (part && (d[1] < 1 || d[1] > 15))) {
        return 0;
    }

    ngx_memcpy(e->since, s, n);
    e->since_len = n;

    if (!part) {
        e->since[e->since_len++] = '-';
        e->since[e->since_len++] = '0';
    }

    e->replay = 1;

    return 1;
}


/*
 * A register or resume that passed its checks: the connection joins the
 * user (user: the register's userId), and the reply goes out now, or
 * when the history says (ngx_ws_relay_history_join()).
 */

static void
fuzz_join(fuzz_conn_t *fc, fuzz_expect_t *e, json_t *user)
{
    ngx_uint_t                    heard, k;
    fuzz_hist_t                  *h;
    ngx_ws_relay_loc_conf_t      *conf;

    conf = fc->wc.conf;
    h = &fuzz_hists[fc->index];

    if (user && !fuzz_user_is(fc, user)) {
        /* it leaves its user: the ids it was sent were that user's */
        h->last_len = 0;
    }

    if (!conf->history.size) {
        /* a register: a since is answered, with nothing replayed */
        e->recovered = e->replay ? 0 : -1;
        e->replay = 0;
        return;
    }

    if (e->replay && !fc->wc.user_fixed && !conf->history.unverified) {
        /* no replay to a user id the client chose */
        e->refused = 1;
        e->replay = 0;

        if (e->kind == FUZZ_REPLY_RESUME) {
            e->recovered = 0;
            return;
        }
    }

    /* does the worker hear the user's channel, once joined? */

    if (user == NULL || fuzz_user_is(fc, user)) {
        heard = fc->wc.user
                && fuzz_is_subscribed(NULL, &fc->wc.user->sn.str);

    } else {
        /* another user: one that other connections have, or a new one */
        heard = 0;

        for (k = 0; k < FUZZ_CONNS; k++) {
            if (fuzz_conns[k] && fuzz_conns[k] != fc
                && fuzz_user_is(fuzz_conns[k], user))
            {
                heard = fuzz_is_subscribed(NULL,
                                           &fuzz_conns[k]->wc.user->sn.str);
                break;
            }
        }
    }

    if (!(fuzz_redis_up && fuzz_sub_up) || (!e->replay && heard)) {
        /* at once: recovered false after a since */
        e->recovered = (e->refused || e->replay) ? 0 : -1;
        return;
    }

    if (e->replay) {
        /* the client has what came up to the since */
        ngx_memcpy(h->last, e->since, e->since_len);
        h->last_len = e->since_len;
    }

    if (heard) {
        /* the channel is heard: a replay is asked of Redis now */
        fuzz_assert(e->replay);
        e->deferred = 1;
        e->reading = 1;
        return;
    }

    /* until the channel is heard, or the wait passes */
    e->deferred = 1;
    e->waiting = 1;
}


static void
fuzz_expect_error(fuzz_expect_t *e, const void *text, size_t len)
{
    e->kind = FUZZ_REPLY_ERROR;

    if (len == 0) {
        len = strlen(text);
    }

    e->error.data = malloc(len);
    fuzz_assert(e->error.data != NULL);
    ngx_memcpy(e->error.data, text, len);
    e->error.len = len;
}


static void
fuzz_expect_free(fuzz_expect_t *e)
{
    ngx_uint_t  i;

    if (e->pub) {
        e->pub->expect = NULL;
    }

    for (i = 0; i < FUZZ_F_N; i++) {
        json_decref(e->field[i]);
        free(e->compact[i].data);
    }

    free(e->error.data);
    free(e->sender.data);
    free(e);
}


/*
 * The k-th delivery that went to Redis: which 0, any; 1, a plain PUBLISH
 * still unanswered; 2, one for the script, unanswered; 3, one for the
 * script whose publication did not come back
 */

static fuzz_pub_t *
fuzz_pub_get(u_char k, ngx_uint_t which)
{
    ngx_uint_t   n, pass;
    fuzz_pub_t  *pub;

    n = 0;

    for (pass = 0; pass < 2; pass++) {

        if (pass == 1) {
            if (n == 0) {
                return NULL;
            }

            k %= n;
        }

        for (pub = fuzz_pubs; pub; pub = pub->next) {
            if (pub->id == 0
                || (which == 1 && (pub->script || pub->answered))
                || (which == 2 && (!pub->script || pub->answered))
                || (which == 3 && (!pub->script || pub->echoed)))
            {
                continue;
            }

            if (pass == 0) {
                n++;

            } else if (k-- == 0) {
                return pub;
            }
        }
    }

    return NULL;
}


/*
 * a chat is settled by the first connection it reaches, acks or not (its
 * sender still there or not); a kept one's (its sender has history) only
 * once the script answered, its reply carrying the message's id
 * (ngx_ws_relay_delivery.c, check())
 */

static ngx_uint_t
fuzz_pub_settled(fuzz_pub_t *pub)
{
    return pub->chat && pub->delivered > 0
           && (!pub->history || pub->expected >= 0);
}


/*
 * A delivery's copies for this worker's connections of its target, as
 * ngx_ws_relay_delivery_local() makes them: one that resumes holds it,
 * unless that is more than its send buffer (then it closes, 1008), or it
 * is closing; a kept one (hid) that a connection had (not newer than the
 * newest it was sent) is not sent, and counts; the others get it now, and
 * count, unless they refuse frames or are closing.  Checked by
 * fuzz_pub_copies_done() after the call.
 */

static void
fuzz_pub_copies(fuzz_pub_t *pub, ngx_str_t *text, ngx_str_t *hid)
{
    ngx_str_t     none;
    ngx_uint_t    k;
    fuzz_hist_t  *h;
    fuzz_conn_t  *fc;

    ngx_memzero(&fuzz_copies, sizeof(fuzz_copies_t));

    fuzz_copies.pub = pub;
    fuzz_str_dup(&fuzz_copies.text, text);
    fuzz_copies.counting = !pub->done;

    ngx_str_null(&none);

    for (k = 0; k < FUZZ_CONNS; k++) {
        fc = fuzz_conns[k];
        h = &fuzz_hists[k];

        if (fc == NULL || !fuzz_conn_of(fc, &pub->target)) {
            continue;
        }

        if (!h->resuming) {
            if (hid && !fuzz_hist_new(h, hid)) {
                /* the client has it */
                fuzz_copies.taken++;

                if (fuzz_copies.counting) {
                    pub->delivered++;
                }

                continue;
            }

            /* a closing connection sends nothing */
            fuzz_copies.want[k] = !fc->wc.closing;
            continue;
        }

        if (fc->wc.closing) {
            continue;
        }

        if (h->held_bytes + text->len > fc->wc.conf->send_buffer) {
            fuzz_copies.overflow[k] = 1;
            continue;
        }

        fuzz_out_add(&h->held_tail, text, hid ? hid : &none, 0, 1);
        h->held_bytes += text->len;
        fuzz_copies.taken++;

        if (fuzz_copies.counting) {
            pub->delivered++;
        }
    }

    if (fuzz_copies.counting && fuzz_pub_settled(pub)) {
        pub->done = 1;
    }
}


static void
fuzz_pub_copies_done(void)
{
    ngx_uint_t  k;

    if (!fuzz_lenient()) {
        for (k = 0; k < FUZZ_CONNS; k++) {
            if (fuzz_copies.calls[k] != fuzz_copies.want[k]) {
                fprintf(stderr, "connection %u: %u copies, %u due\n",
                        (unsigned) k, (unsigned) fuzz_copies.calls[k],
                        (unsigned) fuzz_copies.want[k]);
            }

            fuzz_assert(fuzz_copies.calls[k] == fuzz_copies.want[k]);

            if (fuzz_copies.overflow[k]) {
                fuzz_assert(fuzz_conns[k]->close_code == 1008);
            }
        }
    }

    free(fuzz_copies.text.data);
    ngx_memzero(&fuzz_copies, sizeof(fuzz_copies_t));
}


/* the stubs of ngx_ws_relay_conn.c: a reply to a client */

ngx_int_t
fuzz_on_reply(fuzz_conn_t *fc, u_char *data, size_t len)
{
    json_t         *reply;
    ngx_uint_t      form, mine;
    fuzz_doc_t      doc;
    fuzz_fifo_t    *fifo;
    fuzz_hist_t    *h;
    fuzz_expect_t  *e;

    fuzz_trace("reply to %u: %.*s", (unsigned) fc->index, (int) len, data);

    h = &fuzz_hists[fc->index];

    /* a replayed or held message it is due: in order, after the reply */

    form = 1;
    mine = fuzz_out_take(h, data, len, &form);

    if (mine && !fuzz_lenient()) {
        fuzz_assert(h->join == NULL);
    }

    fuzz_fail_pause(1);
    fuzz_doc_read(&doc, data, len);
    fuzz_fail_pause(0);

    if (mine) {
        /* a kept message that was a JSON object is one, with its id */
        if (form) {
            fuzz_check_form(&doc);
        }

        fuzz_doc_free(&doc);
        return fc->refuse ? NGX_ERROR : NGX_OK;
    }

    fuzz_check_form(&doc);

    reply = doc.json;

    if (fuzz_str_is(reply, "type", "error", 5)) {
        fuzz_assert(json_is_string(json_object_get(reply, "message")));
    }

    if (fuzz_lenient()) {
        fuzz_doc_free(&doc);
        return fc->refuse ? NGX_ERROR : NGX_OK;
    }

    if (fuzz_str_is(reply, "type", "chat_delivered", 14)
        || fuzz_str_is(reply, "type", "notification_result", 19))
    {
        /* the oldest delivery of this connection, and it is over */
        fifo = &fuzz_fifos[fc->index];
        e = fifo->head;

        fuzz_assert(e != NULL && e->pub != NULL);
        fuzz_assert(e->pub->done);

        fifo->head = e->next;

        if (fifo->head == NULL) {
            fifo->tail = NULL;
        }

        fuzz_check_reply(e, &doc, fc);

        if (e == fuzz_call.deliver) {
            fuzz_call.deliver = NULL;
        }

        fuzz_expect_free(e);

    } else if (h->join && fuzz_call.immediate == NULL) {
        /* the reply to a register or resume that waited */
        e = h->join;
        h->join = NULL;

        fuzz_check_reply(e, &doc, fc);
        fuzz_expect_free(e);

    } else {
        /* anything else answers the message being handled, once */
        fuzz_assert(fuzz_call.conn == fc);
        fuzz_assert(fuzz_call.immediate != NULL);
        fuzz_assert(fuzz_call.answered == 0);

        fuzz_call.answered++;
        fuzz_check_reply(fuzz_call.immediate, &doc, fc);
    }

    fuzz_doc_free(&doc);

    return fc->refuse ? NGX_ERROR : NGX_OK;
}


/* what the router sends: an object, each member once, a string "type" */

static void
fuzz_check_form(fuzz_doc_t *doc)
{
    if (doc->json == NULL) {
        fprintf(stderr, "not JSON: %.*s\n", (int) doc->len, doc->text);
    }

    fuzz_assert(json_is_object(doc->json));
    fuzz_assert(doc->nmembers == json_object_size(doc->json));
    fuzz_assert(json_is_string(json_object_get(doc->json, "type")));
}


static void
fuzz_check_reply(fuzz_expect_t *e, fuzz_doc_t *doc, fuzz_conn_t *fc)
{
    json_t      *reply, *field;
    fuzz_pub_t  *pub;
    json_int_t   now;
    ngx_uint_t   size;

    reply = doc->json;
    now = (json_int_t) ngx_ws_relay_now_ms();

    switch (e->kind) {

    case FUZZ_REPLY_ERROR:
        fuzz_assert(json_object_size(reply) == 2);
        fuzz_assert(fuzz_str_is(reply, "type", "error", 5));

        if (!fuzz_str_is(reply, "message", e->error.data, e->error.len)) {
            fprintf(stderr, "error \"%.*s\", expected \"%.*s\"\n",
                    (int) json_string_length(json_object_get(reply,
                                                             "message")),
                    json_string_value(json_object_get(reply, "message")),
                    (int) e->error.len, e->error.data);
        }

        fuzz_assert(fuzz_str_is(reply, "message", e->error.data,
                                e->error.len));
        break;

    case FUZZ_REPLY_WELCOME:
        fuzz_assert(json_object_size(reply) == (fc->wc.user_fixed ? 6 : 5));
        fuzz_assert(fuzz_str_is(reply, "type", "welcome", 7));
        fuzz_assert(fuzz_str_is(reply, "message", "connected", 9));
        fuzz_assert(fuzz_json_is_wtf8(json_object_get(reply, "connectionId"),
                                      fc->wc.id.data, fc->wc.id.len));
        fuzz_assert(fuzz_int_is(doc, "processId", ngx_pid));
        fuzz_assert(fuzz_int_is(doc, "timestamp", now));

        if (fc->wc.user_fixed) {
            fuzz_assert(fuzz_user_is(fc, json_object_get(reply, "userId")));
        }

        break;

    case FUZZ_REPLY_REGISTER:
    case FUZZ_REPLY_RESUME:
        if (e->kind == FUZZ_REPLY_REGISTER) {
            fuzz_assert(fuzz_str_is(reply, "type", "register", 8));
            fuzz_assert(json_equal(json_object_get(reply, "userId"),
                                   e->field[FUZZ_F_USER_ID]));
            size = 4;

        } else {
            fuzz_assert(fuzz_str_is(reply, "type", "resume", 6));
            fuzz_assert(json_object_get(reply, "userId") == NULL);
            size = 3;
        }

        fuzz_assert(fuzz_str_is(reply, "status", "success", 7));
        fuzz_assert(fuzz_int_is(doc, "timestamp", now));

        field = json_object_get(reply, "recovered");

        if (e->recovered < 0) {
            fuzz_assert(field == NULL);

        } else {
            fuzz_assert(json_is_boolean(field)
                        && json_is_true(field) == (e->recovered > 0));
            size++;
        }

        fuzz_assert(json_object_size(reply) == size);
        break;

    case FUZZ_REPLY_PONG:
        fuzz_assert(json_object_size(reply) == 2);
        fuzz_assert(fuzz_str_is(reply, "type", "pong", 4));
        fuzz_assert(fuzz_int_is(doc, "timestamp", now));
        break;

    case FUZZ_REPLY_ECHO:
        fuzz_check_delivery(e, doc);
        break;

    case FUZZ_REPLY_CHAT_DELIVERED:
    case FUZZ_REPLY_NOTIFICATION_RESULT:
        pub = e->pub;

        if (e->kind == FUZZ_REPLY_CHAT_DELIVERED) {
            size = 4;
            fuzz_assert(fuzz_str_is(reply, "type", "chat_delivered", 14));

        } else {
            size = 5;
            fuzz_assert(fuzz_str_is(reply, "type", "notification_result",
                                    19));
            fuzz_assert(fuzz_int_is(doc, "connections",
                                    (json_int_t) pub->delivered));
        }

        /* the id as it was decoded, written anew */
        fuzz_assert(json_equal(json_object_get(reply, "targetUserId"),
                               e->field[FUZZ_F_TARGET]));

        field = json_object_get(reply, "delivered");
        fuzz_assert(json_is_boolean(field));
        fuzz_assert(json_is_true(field) == (pub->delivered > 0));

        /* with history: kept and taken by nobody now; kept as what */

        if (pub->history) {
            field = json_object_get(reply, "queued");
            fuzz_assert(json_is_boolean(field));
            fuzz_assert(json_is_true(field)
                        == (pub->stored && pub->delivered == 0));
            size++;

            field = json_object_get(reply, "id");

            if (pub->stored) {
                fuzz_assert(fuzz_json_is_wtf8(field, pub->hid,
                                              pub->hid_len));
                size++;

            } else {
                fuzz_assert(field == NULL);
            }
        }

        fuzz_assert(json_object_size(reply) == size);
        fuzz_assert(fuzz_int_is(doc, "timestamp", now));
        break;
    }
}


/*
 * The stubs of ngx_ws_relay_conn.c: a copy of a delivery for a target's
 * connection, the text the bus was given (with its id, for a kept one)
 */

ngx_int_t
fuzz_on_delivery(fuzz_conn_t *fc, u_char *data, size_t len)
{
    fuzz_pub_t  *pub;

    /* deliveries go only to their target's connections */
    fuzz_assert(fuzz_copies.pub != NULL);
    fuzz_assert(fc->wc.user != NULL);

    fuzz_trace("delivery to %u: %.*s", (unsigned) fc->index, (int) len, data);

    fuzz_copies.calls[fc->index]++;

    fuzz_assert(len == fuzz_copies.text.len
                && ngx_memcmp(data, fuzz_copies.text.data, len) == 0);

    if (fc->refuse) {
        return NGX_ERROR;
    }

    pub = fuzz_copies.pub;
    fuzz_copies.taken++;

    if (fuzz_copies.counting) {
        pub->delivered++;

        if (fuzz_pub_settled(pub)) {
            pub->done = 1;
        }
    }

    return NGX_OK;
}


/*
 * A chat (delivered, or echoed to its sender) or a notification: the
 * fields of the message as their compact text, or their defaults.
 */

static void
fuzz_check_delivery(fuzz_expect_t *e, fuzz_doc_t *doc)
{
    json_t  *message;

    message = doc->json;

    fuzz_assert(fuzz_json_is_wtf8(json_object_get(message, "sender"),
                                  e->sender.data, e->sender.len));
    fuzz_assert(fuzz_int_is(doc, "timestamp",
                            (json_int_t) ngx_ws_relay_now_ms()));

    if (e->kind != FUZZ_REPLY_NOTIFICATION_RESULT) {
        /* a missing text stays missing, as in JSON.stringify() */

        fuzz_assert(json_object_size(message)
                    == (e->field[FUZZ_F_TEXT] ? 4 : 3));
        fuzz_assert(fuzz_str_is(message, "type", "chat", 4));

        if (e->field[FUZZ_F_TEXT]) {
            fuzz_assert(fuzz_text_is(doc, "text", e->compact[FUZZ_F_TEXT].data,
                                     e->compact[FUZZ_F_TEXT].len));
            fuzz_assert(json_equal(json_object_get(message, "text"),
                                   e->field[FUZZ_F_TEXT]));
        }

        return;
    }

    fuzz_assert(json_object_size(message) == 5);
    fuzz_assert(fuzz_str_is(message, "type", "notification", 12));

    /* message.action || "general", message.data || {} */

    if (fuzz_js_falsy(e->field[FUZZ_F_ACTION])) {
        fuzz_assert(fuzz_text_is(doc, "action", (u_char *) "\"general\"", 9));

    } else {
        fuzz_assert(fuzz_text_is(doc, "action", e->compact[FUZZ_F_ACTION].data,
                                 e->compact[FUZZ_F_ACTION].len));
        fuzz_assert(json_equal(json_object_get(message, "action"),
                               e->field[FUZZ_F_ACTION]));
    }

    if (fuzz_js_falsy(e->field[FUZZ_F_DATA])) {
        fuzz_assert(fuzz_text_is(doc, "data", (u_char *) "{}", 2));

    } else {
        fuzz_assert(fuzz_text_is(doc, "data", e->compact[FUZZ_F_DATA].data,
                                 e->compact[FUZZ_F_DATA].len));
        fuzz_assert(json_equal(json_object_get(message, "data"),
                               e->field[FUZZ_F_DATA]));
    }
}


/* the text of a member of what the router wrote */

static ngx_uint_t
fuzz_text_is(fuzz_doc_t *doc, const char *name, u_char *text, size_t len)
{
    fuzz_member_t  *m;

    m = fuzz_doc_member(doc, (u_char *) name, strlen(name),
                        FUZZ_JSON_ANY_KEY);

    return m && m->value_len == len
           && ngx_memcmp(doc->text + m->value, text, len) == 0;
}


/*
 * The bus, as the router and delivery call it, and as the history does
 * (ngx_ws_relay_bus.h): no Redis here, only what the input says it does.
 */

ngx_int_t
ngx_ws_relay_bus_publish(ngx_str_t *user_id, ngx_str_t *text, uint64_t id,
    ngx_ws_relay_history_conf_t *h, ngx_uint_t *stored)
{
    json_t         *target;
    fuzz_doc_t      doc;
    fuzz_pub_t     *pub;
    fuzz_conn_t    *fc;
    fuzz_expect_t  *e;

    e = fuzz_call.deliver;
    fc = fuzz_call.conn;

    fuzz_assert(e != NULL && fc != NULL);
    fuzz_assert(id > fuzz_last_id);
    fuzz_last_id = id;

    pub = e->pub;
    target = e->field[FUZZ_F_TARGET];

    fuzz_assert(fuzz_json_is_wtf8(target, user_id->data, user_id->len));

    /*
     * the sender's history, if it has one (none when the copy kept for
     * the script could not be allocated)
     */
    fuzz_assert(h == (fc->wc.conf->history.size ? &fc->wc.conf->history
                                                : NULL)
                || (h == NULL && fuzz_alloc_failed()));

    fuzz_str_dup(&pub->text, text);
    fuzz_str_dup(&pub->target, user_id);

    /* the text the bus and this worker's connections get */

    fuzz_fail_pause(1);
    fuzz_doc_read(&doc, text->data, text->len);
    fuzz_fail_pause(0);

    fuzz_check_form(&doc);

    if (!fuzz_lenient()) {
        fuzz_check_delivery(e, &doc);
    }

    fuzz_doc_free(&doc);

    *stored = 0;

    if (!fuzz_redis_up) {
        /* no Redis: the copies here, and it is over */
        fuzz_pub_copies(pub, text, NULL);
        pub->done = 1;
        return NGX_ERROR;
    }

    pub->id = id;

    if (h && h->size) {
        /*
         * the history script keeps and publishes it: no copy now (and
         * none from the publication while the subscriber link is down:
         * the connections catch up when it is back)
         */
        ngx_memzero(&fuzz_copies, sizeof(fuzz_copies_t));
        fuzz_copies.pub = pub;
        fuzz_str_dup(&fuzz_copies.text, text);

        pub->script = 1;
        *stored = 1;
        return NGX_OK;
    }

    fuzz_pub_copies(pub, text, NULL);

    return NGX_OK;
}


ngx_ws_relay_bus_state_e
ngx_ws_relay_bus_state(void)
{
    return (fuzz_redis_up && fuzz_sub_up) ? NGX_WS_RELAY_BUS_UP
                                          : NGX_WS_RELAY_BUS_DOWN;
}


/* one Redis here: a user's master is the bus's, up as the bus is */

ngx_uint_t
ngx_ws_relay_bus_user_up(ngx_str_t *user_id)
{
    return fuzz_redis_up && fuzz_sub_up;
}


/*
 * The history script (the store is the bus's, stubbed above), asked for a
 * page of replay: the connection's user, ttl, since, count and bytes; or
 * for the newest id of the user's history, when the worker has none
 */

ngx_int_t
ngx_ws_relay_bus_history(ngx_str_t *user_id, ngx_str_t *args, ngx_uint_t n,
    ngx_ws_relay_bus_reply_pt fn, void *privdata)
{
    u_char        buf[NGX_INT64_LEN];
    ngx_str_t     s;
    ngx_uint_t    k, top;
    fuzz_ask_t   *ask, **q;
    fuzz_hist_t  *h;
    fuzz_conn_t  *fc;

    fuzz_assert(fn != NULL && privdata != NULL);

    /* the connection whose resume asks */

    for (k = 0; k < FUZZ_CONNS; k++) {
        if (fuzz_conns[k] && fuzz_conns[k]->wc.resume == privdata) {
            break;
        }
    }

    fuzz_assert(k < FUZZ_CONNS);

    fc = fuzz_conns[k];
    h = &fuzz_hists[k];

    fuzz_assert(fuzz_conn_of(fc, user_id));

    top = (n == 1);

    if (top) {
        fuzz_assert(args[0].len == 1 && args[0].data[0] == 't');
        fuzz_assert(fc->wc.user->last_id.len == 0);

        if (!fuzz_lenient()) {
            fuzz_assert(h->resuming && !h->replay && h->reading && h->top);
        }

        goto ask;
    }

    fuzz_assert(n == 5);
    fuzz_assert(args[0].len == 1 && args[0].data[0] == 'r');

    s.data = buf;
    s.len = ngx_sprintf(buf, "%M", fc->wc.conf->history.ttl) - buf;
    fuzz_assert(fuzz_str_eq(&args[1], &s));

    s.len = ngx_sprintf(buf, "%ui", (ngx_uint_t) 64) - buf;
    fuzz_assert(fuzz_str_eq(&args[3], &s));

    s.len = ngx_sprintf(buf, "%uz", ngx_min(fc->wc.conf->send_buffer / 2,
                                            256 * 1024))
            - buf;
    fuzz_assert(fuzz_str_eq(&args[4], &s));

    if (!fuzz_lenient()) {
        /* after the since, then after the last id replayed */
        fuzz_assert(h->resuming && h->replay && h->reading && !h->top);
        fuzz_assert(args[2].len == h->since_len
                    && ngx_memcmp(args[2].data, h->since, h->since_len) == 0);
    }

ask:

    if (!fuzz_redis_up) {
        return NGX_ERROR;
    }

    ask = calloc(1, sizeof(fuzz_ask_t));
    fuzz_assert(ask != NULL);

    ask->fn = fn;
    ask->privdata = privdata;
    ask->conn = k;
    ask->top = top;

    for (q = &fuzz_asks; *q; q = &(*q)->next) { /* void */ }
    *q = ask;

    return NGX_OK;
}


/*
 * as the bus answers: no reply (the link went) or an error fails; the
 * context is the stand-in's, none (the reply's link is the bus's to know)
 */

ngx_int_t
ngx_ws_relay_bus_history_reply(struct redisAsyncContext *ac,
    redisReply *reply, const char *what)
{
    fuzz_assert(ac == NULL && what != NULL);

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_ws_relay_bus_user_joined(ngx_str_t *user_id)
{
    ngx_uint_t  i;

    for (i = 0; i < fuzz_njoined; i++) {
        fuzz_assert(user_id->len != fuzz_joined[i].len
                    || ngx_memcmp(user_id->data, fuzz_joined[i].data,
                                  user_id->len) != 0);
    }

    fuzz_assert(fuzz_njoined < FUZZ_CONNS + 1);
    fuzz_str_dup(&fuzz_joined[fuzz_njoined++], user_id);
}


void
ngx_ws_relay_bus_user_left(ngx_str_t *user_id)
{
    ngx_uint_t  i;

    /* the user is gone, and with it what the worker knew of it */
    fuzz_user_drop(user_id);

    for (i = 0; i < fuzz_njoined; i++) {
        if (user_id->len == fuzz_joined[i].len
            && ngx_memcmp(user_id->data, fuzz_joined[i].data, user_id->len)
               == 0)
        {
            free(fuzz_joined[i].data);
            fuzz_joined[i] = fuzz_joined[--fuzz_njoined];
            return;
        }
    }

    fuzz_assert(0 && "a user left that never joined");
}


/* the events of the history: the bus and Redis as the input says */

static void
fuzz_history_event(ngx_uint_t i, ngx_uint_t ev, const u_char *p, size_t len)
{
    switch (ev) {

    case FUZZ_H_SUBSCRIBED:
        fuzz_subscribed(i);
        break;

    case FUZZ_H_PAGE:
        fuzz_page(p, len);
        break;

    case FUZZ_H_RAW:
        fuzz_raw_page(p, len);
        break;

    default:
        fuzz_bus(p, len);
    }
}


/*
 * Time passes: timers expire, among them the waits for a user's channel
 * (the reply then says recovered false, and what was held goes out)
 */

static void
fuzz_time(ngx_msec_t ms)
{
    ngx_uint_t    k;
    fuzz_hist_t  *h;

    for (k = 0; k < FUZZ_CONNS; k++) {
        h = &fuzz_hists[k];

        if (h->resuming && h->waiting
            && (ngx_msec_int_t) (h->deadline - ngx_current_msec - ms) <= 0)
        {
            h->waiting = 0;
            fuzz_hist_end(k, 0);
        }
    }

    fuzz_time_pass(ms);
}


/*
 * The subscriber heard the confirmation of the channel of connection i's
 * user (ngx_ws_relay_bus.c, bus_user_subscribed()): the connections that
 * waited for it go on, to their replay, or live (once the worker knows
 * the newest id of the user's history: if it has none, the script is
 * asked for it first).  If the worker heard the channel before the
 * subscriber link went, the live connections catch up after the newest
 * kept message each was sent, or, one that had none and may be replayed,
 * after the newest id the worker heard; nobody is answered.
 */

static void
fuzz_subscribed(ngx_uint_t i)
{
    ngx_uint_t            k, missed;
    fuzz_hist_t          *h;
    fuzz_user_t          *um;
    fuzz_conn_t          *fc;
    ngx_ws_relay_user_t  *user;
    ngx_ws_relay_conn_t  *wc;

    fc = fuzz_conns[i];

    if (fc == NULL || fc->wc.user == NULL || !fuzz_sub_up) {
        return;
    }

    user = fc->wc.user;

    fuzz_subscribed_set(&user->sn.str, 1);

    um = fuzz_user(&user->sn.str, 1);
    missed = um->missed;
    um->missed = 0;

    for (k = 0; k < FUZZ_CONNS; k++) {
        h = &fuzz_hists[k];

        if (fuzz_conns[k] == NULL || fuzz_conns[k]->wc.user != user) {
            continue;
        }

        wc = &fuzz_conns[k]->wc;

        if (h->resuming) {
            if (!h->waiting) {
                continue;
            }

            h->waiting = 0;

            if (h->replay) {
                /* a page is asked for */
                h->reading = 1;

            } else if (um->last_len == 0) {
                /* the newest id is asked for */
                h->reading = 1;
                h->top = 1;

            } else {
                fuzz_hist_end(k, -1);
            }

            continue;
        }

        if (!missed || wc->closing || wc->conf->history.size == 0) {
            continue;
        }

        /*
         * a catch-up, unanswered: a replay after the newest kept message
         * the connection was sent (what it would have got live), for any
         * user id; one that had none yet, after the newest id heard, when
         * its user id may have its history
         */

        if (h->last_len) {
            ngx_memcpy(h->since, h->last, h->last_len);
            h->since_len = h->last_len;

        } else if (um->last_len
                   && (wc->user_fixed || wc->conf->history.unverified))
        {
            ngx_memcpy(h->since, um->last, um->last_len);
            h->since_len = um->last_len;

        } else {
            continue;
        }

        h->resuming = 1;
        h->replay = 1;
        h->reading = 1;
    }

    ngx_ws_relay_history_subscribed(user);
}


/*
 * The oldest ask is answered (reply: NULL, none): what the model says of
 * ngx_ws_relay_history_page() or _top(), then the call.  A page is
 * {recovered, more, newest id, id, JSON, ...}, integers and strings, each
 * id a stream id; anything else, and an error or no reply, has the
 * connection go live with recovered false.  After a page, the worker
 * knows the newest id, then the reply goes if it is due, the page's
 * messages with their ids (a JSON that does not end an object is
 * skipped), and the next page if there is more, else what was held.  An
 * ask for the newest id takes a string that is a stream id as the newest
 * it knows, and with any reply the connection goes live.
 */

static void
fuzz_answer(redisReply *reply)
{
    size_t        i;
    ngx_str_t     id, json, text;
    ngx_int_t     k;
    ngx_uint_t    good, form, more, new;
    fuzz_ask_t   *ask;
    fuzz_doc_t    doc;
    fuzz_hist_t  *h;
    fuzz_conn_t  *fc;

    ask = fuzz_asks;

    if (ask == NULL) {
        if (reply) {
            freeReplyObject(reply);
        }

        return;
    }

    fuzz_asks = ask->next;
    k = ask->conn;

    if (k >= 0 && ask->top) {
        fc = fuzz_conns[k];
        h = &fuzz_hists[k];

        fuzz_assert(fc->wc.resume == ask->privdata);

        h->reading = 0;
        h->top = 0;

        if (reply && reply->type == REDIS_REPLY_STRING) {
            id.data = (u_char *) reply->str;
            id.len = reply->len;

            if (fuzz_id_ok(&id)) {
                fuzz_user_heard(&fc->wc.user->sn.str, &id);
            }
        }

        fuzz_hist_end(k, -1);

    } else if (k >= 0) {
        fc = fuzz_conns[k];
        h = &fuzz_hists[k];

        fuzz_assert(fc->wc.resume == ask->privdata);

        good = reply && reply->type == REDIS_REPLY_ARRAY
               && reply->elements >= 3 && reply->elements % 2 == 1
               && reply->element[0]->type == REDIS_REPLY_INTEGER
               && reply->element[1]->type == REDIS_REPLY_INTEGER;

        for (i = 2; good && i < reply->elements; i++) {
            id.data = (u_char *) reply->element[i]->str;
            id.len = reply->element[i]->len;

            /* the ids go into the clients' JSON: stream ids only */
            good = reply->element[i]->type == REDIS_REPLY_STRING
                   && (i % 2 == 0 && i > 2 ? 1 : fuzz_id_ok(&id));
        }

        h->reading = 0;

        if (!good) {
            fuzz_hist_end(k, 0);

        } else {
            /* where the user's history stands */
            id.data = (u_char *) reply->element[2]->str;
            id.len = reply->element[2]->len;
            fuzz_user_heard(&fc->wc.user->sn.str, &id);

            if (h->join) {
                h->join->recovered = h->refused
                                     ? 0
                                     : (reply->element[0]->integer ? 1 : 0);
                h->join->settled = 1;
            }

            for (i = 3; i < reply->elements; i += 2) {
                id.data = (u_char *) reply->element[i]->str;
                id.len = reply->element[i]->len;
                json.data = (u_char *) reply->element[i + 1]->str;
                json.len = reply->element[i + 1]->len;

                /* one the client had is not sent again */
                new = fuzz_hist_new(h, &id);

                if (new && json.len >= 2 && json.data[json.len - 1] == '}'
                    && !fc->wc.closing)
                {
                    /*
                     * a message the module could have kept (an object
                     * with a type, no duplicate member) is one, with its
                     * id; others are what they are
                     */
                    fuzz_fail_pause(1);
                    fuzz_doc_read(&doc, json.data, json.len);
                    fuzz_fail_pause(0);

                    /* as the router writes them: fuzz_check_form() */
                    form = json_is_object(doc.json)
                           && doc.nmembers == json_object_size(doc.json)
                           && json_is_string(json_object_get(doc.json,
                                                             "type"));

                    fuzz_doc_free(&doc);

                    text.len = json.len + sizeof(",\"id\":\"\"") - 1 + id.len;
                    text.data = malloc(text.len);
                    fuzz_assert(text.data != NULL);

                    ngx_sprintf(text.data, "%*s,\"id\":\"%V\"}",
                                json.len - 1, json.data, &id);

                    fuzz_out_add(&h->out_tail, &text, NULL, 0, form);
                    free(text.data);
                }

                ngx_memcpy(h->since, id.data, id.len);
                h->since_len = id.len;
            }

            more = reply->element[1]->integer && reply->elements > 3;

            if (more && !fc->wc.closing) {
                h->reading = 1;

            } else {
                fuzz_hist_end(k, -1);
            }
        }
    }

    ask->fn(NULL, reply, ask->privdata);

    if (reply) {
        freeReplyObject(reply);
    }

    free(ask);
}


/*
 * A page the payload describes, written as Redis would: payload[0] bit 0
 * recovered, bit 1 more, bits 2-3 the newest id: the stream's, "0-0", a
 * field of any bytes (next in the payload), the stream's and a quote;
 * then entries, each a selector byte s: the id (s & 3) the stream's next,
 * the since of the replay (again), a field of any bytes, one before the
 * stream's first; the JSON ((s >> 2) & 3) a message, a field of any
 * bytes, an array, a message of (s >> 4) + 1 kilobytes.  An ask for the
 * newest id gets that id alone.
 */

static void
fuzz_page(const u_char *p, size_t len)
{
    u_char         flags, s, idbuf[NGX_INT64_LEN * 2 + 2];
    u_char         newest[NGX_INT64_LEN * 2 + 3];
    u_char         num[NGX_SIZE_T_LEN + 8];
    size_t         n;
    ngx_int_t      k;
    ngx_str_t      id, json, top;
    ngx_uint_t     entries;
    fuzz_buf_t     b, body;
    redisReply    *reply;
    redisReader   *reader;
    const u_char  *last;

    static u_char  message[] = "{\"type\":\"chat\",\"text\":\"replayed\","
                               "\"sender\":\"dave\",\"timestamp\":1}";

    if (fuzz_asks == NULL) {
        return;
    }

    k = fuzz_asks->conn;
    last = p + len;
    flags = (p < last) ? *p++ : 0;

    ngx_str_null(&top);

    if (((flags >> 2) & 3) == 2) {
        n = (p < last) ? *p++ : 0;
        n = ngx_min(n, (size_t) (last - p));
        top.data = (u_char *) p;
        top.len = n;
        p += n;
    }

    ngx_memzero(&body, sizeof(fuzz_buf_t));
    entries = 0;

    while (p < last && entries < FUZZ_PAGE_ENTRIES) {
        s = *p++;

        switch (s & 3) {

        case 1:
            if (k >= 0) {
                id.data = fuzz_hists[k].since;
                id.len = fuzz_hists[k].since_len;
                break;
            }

            /* fall through */

        case 0:
            fuzz_next_hid(idbuf, &n);
            id.data = idbuf;
            id.len = n;
            break;

        case 2:
            n = (p < last) ? *p++ : 0;
            n = ngx_min(n, (size_t) (last - p));
            id.data = (u_char *) p;
            id.len = n;
            p += n;
            break;

        default:
            id.data = idbuf;
            id.len = ngx_sprintf(idbuf, "%uL-%ui", FUZZ_STREAM_MS - 1,
                                 entries)
                     - idbuf;
        }

        n = ngx_sprintf(num, "$%uz\r\n", id.len) - num;
        fuzz_buf_add(&body, num, n);
        fuzz_buf_add(&body, id.data, id.len);
        fuzz_buf_add(&body, "\r\n", 2);

        switch ((s >> 2) & 3) {

        case 0:
            json.data = message;
            json.len = sizeof(message) - 1;
            break;

        case 1:
            n = (p < last) ? *p++ : 0;
            n = ngx_min(n, (size_t) (last - p));
            json.data = (u_char *) p;
            json.len = n;
            p += n;
            break;

        case 2:
            ngx_str_set(&json, "[1]");
            break;

        default:
            json.len = ((s >> 4) + 1) * 1024;
            json.data = malloc(json.len);
            fuzz_assert(json.data != NULL);

            n = sizeof("{\"type\":\"chat\",\"text\":\"") - 1;
            ngx_memcpy(json.data, "{\"type\":\"chat\",\"text\":\"", n);
            ngx_memset(json.data + n, 'x', json.len - n - 2);
            ngx_memcpy(json.data + json.len - 2, "\"}", 2);
        }

        n = ngx_sprintf(num, "$%uz\r\n", json.len) - num;
        fuzz_buf_add(&body, num, n);
        fuzz_buf_add(&body, json.data, json.len);
        fuzz_buf_add(&body, "\r\n", 2);

        if (((s >> 2) & 3) == 3) {
            free(json.data);
        }

        entries++;
    }

    /* the newest id, once the entries took theirs */

    switch ((flags >> 2) & 3) {

    case 0:
    case 3:
        fuzz_newest_hid(newest, &n);

        if ((flags >> 2) & 3) {
            newest[n++] = '"';
        }

        top.data = newest;
        top.len = n;
        break;

    case 1:
        ngx_str_set(&top, "0-0");
        break;

    default:
        break;
    }

    ngx_memzero(&b, sizeof(fuzz_buf_t));

    if (fuzz_asks->top) {
        /* "t": the id alone */
        n = ngx_sprintf(num, "$%uz\r\n", top.len) - num;
        fuzz_buf_add(&b, num, n);
        fuzz_buf_add(&b, top.data, top.len);
        fuzz_buf_add(&b, "\r\n", 2);

    } else {
        n = ngx_sprintf(idbuf, "*%ui\r\n", 3 + 2 * entries) - idbuf;
        fuzz_buf_add(&b, idbuf, n);
        fuzz_buf_add(&b, (flags & 1) ? ":1\r\n" : ":0\r\n", 4);
        fuzz_buf_add(&b, (flags & 2) ? ":1\r\n" : ":0\r\n", 4);
        n = ngx_sprintf(num, "$%uz\r\n", top.len) - num;
        fuzz_buf_add(&b, num, n);
        fuzz_buf_add(&b, top.data, top.len);
        fuzz_buf_add(&b, "\r\n", 2);
        fuzz_buf_add(&b, body.data, body.len);
    }

    reader = fuzz_reader_new(b.data, b.len);

    reply = NULL;
    fuzz_assert(redisReaderGetReply(reader, (void **) &reply) == REDIS_OK
                && reply != NULL);
    fuzz_assert(reader->pos == reader->len);

    redisReaderFree(reader);
    fuzz_buf_free(&b);
    fuzz_buf_free(&body);

    fuzz_answer(reply);
}


/* the reply hiredis reads off the payload: none, no reply at all */

static void
fuzz_raw_page(const u_char *p, size_t len)
{
    void         *r;
    redisReader  *reader;

    if (fuzz_asks == NULL) {
        return;
    }

    reader = fuzz_reader_new(p, len);

    r = NULL;

    if (redisReaderGetReply(reader, &r) != REDIS_OK) {
        r = NULL;
    }

    redisReaderFree(reader);

    fuzz_answer(r);
}


/* what the bus sees of Redis: its subscriber link, and kept deliveries */

static void
fuzz_bus(const u_char *p, size_t len)
{
    u_char                u[3];
    ngx_uint_t            i;
    ngx_queue_t          *q, *users;
    fuzz_pub_t           *pub;
    fuzz_user_t          *um;
    ngx_ws_relay_user_t  *user;

    for (i = 0; i < 3; i++) {
        u[i] = (i < len) ? p[i] : 0;
    }

    switch (u[0] % 6) {

    case FUZZ_BUS_SUB_LOST:
        if (!fuzz_sub_up) {
            break;
        }

        /*
         * ngx_ws_relay_bus_lost(): no channel heard until subscribed, and
         * those that were heard missed what comes meanwhile
         */

        fuzz_sub_up = 0;

        users = ngx_ws_relay_registry_users();

        for (q = ngx_queue_head(users);
             q != ngx_queue_sentinel(users);
             q = ngx_queue_next(q))
        {
            user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);
            user->missed = user->subscribed;
            user->subscribed = 0;

            um = fuzz_user(&user->sn.str, 1);
            um->missed = um->heard;
            fuzz_subscribed_set(&user->sn.str, 0);
        }

        break;

    case FUZZ_BUS_SUB_BACK:
        fuzz_sub_up = fuzz_redis_up;
        break;

    case FUZZ_BUS_STORED:
        pub = fuzz_pub_get(u[1], 2);

        if (pub) {
            fuzz_script_reply(pub, (signed char) u[2], p + 3,
                              len > 3 ? len - 3 : 0, 1);
        }

        break;

    case FUZZ_BUS_UNSTORED:
        pub = fuzz_pub_get(u[1], 2);

        if (pub) {
            fuzz_script_reply(pub, 0, NULL, 0, 0);
        }

        break;

    case FUZZ_BUS_ECHO:
        pub = fuzz_pub_get(u[1], 3);

        if (pub) {
            fuzz_echo(pub);
        }

        break;

    default:
        for (pub = fuzz_pubs; pub; pub = pub->next) {
            pub->done = 1;
        }

        fuzz_time(fuzz_main_conf.redis.timeout);
    }
}


/*
 * The history script's reply to a kept delivery, as ngx_ws_relay_bus.c
 * takes it (bus_stored()): {id, receivers}, with a stream id (the given
 * one, or when there is none the one the publication had, or the
 * stream's next): it has that id, and so many workers to wait for;
 * otherwise (good 0, or an id that is no stream id) the worker's own
 * connections get the text now, unless its publication came back
 * already, and it is over.  The id is the one the publication has, when
 * it came back first.
 */

static void
fuzz_script_reply(fuzz_pub_t *pub, ngx_int_t receivers, const u_char *id,
    size_t len, ngx_uint_t good)
{
    u_char     buf[NGX_WS_RELAY_ID_LEN];
    ngx_str_t  hid, rid;

    pub->answered = 1;

    if (good) {
        if (len) {
            rid.data = (u_char *) id;
            rid.len = len;

        } else if (pub->hid_len) {
            rid.data = pub->hid;
            rid.len = pub->hid_len;

        } else {
            fuzz_next_hid(buf, &rid.len);
            rid.data = buf;
        }

        good = fuzz_id_ok(&rid);
    }

    if (!good) {
        if (!pub->done && !pub->stored) {
            fuzz_pub_copies(pub, &pub->text, NULL);
        }

        pub->done = 1;

        ngx_ws_relay_delivery_unstored(pub->id);

        if (fuzz_copies.pub) {
            fuzz_pub_copies_done();
        }

        return;
    }

    if (pub->hid_len == 0) {
        ngx_memcpy(pub->hid, rid.data, rid.len);
        pub->hid_len = rid.len;
    }

    hid.data = pub->hid;
    hid.len = pub->hid_len;

    if (!pub->done) {
        pub->stored = 1;
        pub->expected = ngx_max(receivers, 0);
        pub->done = (pub->acks >= (ngx_uint_t) pub->expected)
                    || fuzz_pub_settled(pub);
    }

    ngx_ws_relay_delivery_stored(pub->id, &hid);
    ngx_ws_relay_delivery_published(pub->id, receivers);
}


/*
 * The publication of a kept delivery comes back to this worker, as
 * ngx_ws_relay_bus.c takes it (bus_user_message()): if the worker hears
 * the user's channel, it has heard the id, the user's connections get the
 * text with "id" as its last member (held by those that join), and the
 * delivery has its id and acks itself with their count.
 */

static void
fuzz_echo(fuzz_pub_t *pub)
{
    u_char               *p;
    ngx_str_t             hid, text;
    ngx_uint_t            n, ended;
    ngx_ws_relay_user_t  *user;

    pub->echoed = 1;

    if (pub->hid_len == 0) {
        fuzz_next_hid(pub->hid, &pub->hid_len);
    }

    hid.data = pub->hid;
    hid.len = pub->hid_len;

    /* the script's, or the stream's: taken only as stream ids */
    fuzz_assert(fuzz_id_ok(&hid));

    user = ngx_ws_relay_registry_find_user(&pub->target);

    if (!fuzz_sub_up || user == NULL || !user->subscribed) {
        /* the worker does not hear it */
        return;
    }

    fuzz_user_heard(&pub->target, &hid);

    text.len = pub->text.len + sizeof(",\"id\":\"\"") - 1 + hid.len;
    text.data = malloc(text.len);
    fuzz_assert(text.data != NULL);

    p = ngx_cpymem(text.data, pub->text.data, pub->text.len - 1);
    ngx_sprintf(p, ",\"id\":\"%V\"}", &hid);

    /* over before: the module has it no more */
    ended = pub->done;

    fuzz_pub_copies(pub, &text, &hid);

    n = ngx_ws_relay_delivery_local(&pub->target, &text, &hid);

    /* the count of those that took it, held or sent */
    fuzz_assert(n == fuzz_copies.taken || fuzz_lenient());

    fuzz_pub_copies_done();
    free(text.data);

    if (!ended) {
        pub->acks++;
        pub->stored = 1;
        pub->done = pub->done
                    || (pub->expected >= 0
                        && pub->acks >= (ngx_uint_t) pub->expected)
                    || fuzz_pub_settled(pub);
    }

    ngx_ws_relay_delivery_stored(pub->id, &hid);
    ngx_ws_relay_delivery_acked(pub->id, n);
}


/*
 * Connection k goes live (ngx_ws_relay_history_live()): the reply if it
 * is due, recovered as the history says (0 after a since, none without;
 * false when refused), then what was held in order, without what the
 * replay had: an id not after the last one replayed (compared as two
 * numbers; an id the model cannot read may go either way).  A connection
 * that is closing sends nothing.
 */

static void
fuzz_hist_end(ngx_uint_t k, ngx_int_t recovered)
{
    fuzz_out_t   *m;
    fuzz_hist_t  *h;
    fuzz_conn_t  *fc;

    h = &fuzz_hists[k];
    fc = fuzz_conns[k];

    if (h->join) {
        if (!h->join->settled) {
            h->join->recovered = h->refused
                                 ? 0
                                 : (h->replay ? ngx_max(recovered, 0) : -1);
        }

        if (fc->wc.closing) {
            fuzz_expect_free(h->join);
            h->join = NULL;
        }
    }

    for (m = h->held; m; m = m->next) {

        if (m->id.len && !fuzz_hist_new(h, &m->id)) {
            /* the replay had it */
            continue;
        }

        if (!fc->wc.closing) {
            fuzz_out_add(&h->out_tail, &m->text, NULL, 0, 1);
        }
    }

    fuzz_out_free(&h->held);
    h->held_tail = &h->held;
    h->held_bytes = 0;

    h->resuming = 0;
    h->waiting = 0;
    h->reading = 0;
}


/*
 * ngx_ws_relay_history_new(): a kept message is new to the connection if
 * its id is after the newest it was sent, and then it is the newest
 */

static ngx_uint_t
fuzz_hist_new(fuzz_hist_t *h, ngx_str_t *id)
{
    ngx_int_t   c;
    ngx_str_t   last;
    ngx_uint_t  known;

    if (h->last_len) {
        last.data = h->last;
        last.len = h->last_len;

        /* the ids here are stream ids, or a client's since */
        c = fuzz_id_cmp(id, &last, &known);
        fuzz_assert(known);

        if (c <= 0) {
            return 0;
        }
    }

    if (id->len <= NGX_WS_RELAY_ID_LEN) {
        ngx_memcpy(h->last, id->data, id->len);
        h->last_len = id->len;
    }

    return 1;
}


static void
fuzz_hist_clear(ngx_uint_t k)
{
    fuzz_hist_t  *h;

    h = &fuzz_hists[k];

    if (h->join) {
        fuzz_expect_free(h->join);
    }

    fuzz_out_free(&h->held);
    fuzz_out_free(&h->out);

    ngx_memzero(h, sizeof(fuzz_hist_t));

    h->held_tail = &h->held;
    h->out_tail = &h->out;
}


static void
fuzz_out_add(fuzz_out_t ***tail, ngx_str_t *text, ngx_str_t *id,
    ngx_uint_t optional, ngx_uint_t form)
{
    fuzz_out_t  *m;

    m = calloc(1, sizeof(fuzz_out_t));
    fuzz_assert(m != NULL);

    fuzz_str_dup(&m->text, text);

    if (id) {
        fuzz_str_dup(&m->id, id);
    }

    /* once lenient, the model is no more sure of anything */
    m->optional = optional || fuzz_lenient();
    m->form = form;

    **tail = m;
    *tail = &m->next;
}


static void
fuzz_out_free(fuzz_out_t **list)
{
    fuzz_out_t  *m;

    while (*list) {
        m = *list;
        *list = m->next;

        free(m->text.data);
        free(m->id.data);
        free(m);
    }
}


/*
 * A text for a connection, if it is the next the history owes it (those
 * the model is unsure of may be left out); lenient: any of them.
 */

static ngx_uint_t
fuzz_out_take(fuzz_hist_t *h, u_char *data, size_t len, ngx_uint_t *form)
{
    fuzz_out_t  *m, **q, **first;

    first = NULL;

    for (q = &h->out; (m = *q); q = &m->next) {

        if (m->text.len == len
            && (len == 0 || ngx_memcmp(m->text.data, data, len) == 0))
        {
            break;
        }

        if (first == NULL) {
            first = q;
        }

        if (!m->optional && !fuzz_lenient()) {
            return 0;
        }
    }

    if (m == NULL) {
        return 0;
    }

    *form = m->form;

    /* what the model was unsure of, before it, was not sent */

    if (first && !fuzz_lenient()) {
        *q = NULL;
        fuzz_out_free(first);
        *first = m;
        q = first;
    }

    *q = m->next;

    if (*q == NULL) {
        h->out_tail = q;
    }

    free(m->text.data);
    free(m->id.data);
    free(m);

    return 1;
}


/*
 * The order of two ids "<ms>-<seq>" as two numbers; known 0: one is no
 * such id
 */

static ngx_int_t
fuzz_id_cmp(ngx_str_t *a, ngx_str_t *b, ngx_uint_t *known)
{
    unsigned __int128  ams, aseq, bms, bseq;

    if (!fuzz_id_value(a, &ams, &aseq) || !fuzz_id_value(b, &bms, &bseq)) {
        *known = 0;
        return 0;
    }

    *known = 1;

    if (ams != bms) {
        return ams < bms ? -1 : 1;
    }

    if (aseq != bseq) {
        return aseq < bseq ? -1 : 1;
    }

    return 0;
}


static ngx_uint_t
fuzz_id_value(ngx_str_t *id, unsigned __int128 *ms, unsigned __int128 *seq)
{
    size_t              i;
    unsigned __int128  *v, d;

    v = ms;
    *ms = 0;
    *seq = 0;

    if (id->len == 0 || !isdigit(id->data[0])
        || !isdigit(id->data[id->len - 1]))
    {
        return 0;
    }

    for (i = 0; i < id->len; i++) {

        if (id->data[i] == '-' && v == ms) {
            v = seq;
            continue;
        }

        if (!isdigit(id->data[i])) {
            return 0;
        }

        d = id->data[i] - '0';

        if (__builtin_mul_overflow(*v, 10, v)
            || __builtin_add_overflow(*v, d, v))
        {
            return 0;
        }
    }

    return v == seq;
}


/* a stream id of Redis: "<ms>-<seq>", 1 to 20 digits each */

static ngx_uint_t
fuzz_id_ok(ngx_str_t *id)
{
    size_t      i, d[2];
    ngx_uint_t  part;

    part = 0;
    d[0] = 0;
    d[1] = 0;

    for (i = 0; i < id->len; i++) {
        if (id->data[i] >= '0' && id->data[i] <= '9') {
            d[part]++;

        } else if (id->data[i] == '-' && part == 0) {
            part = 1;

        } else {
            return 0;
        }
    }

    return part == 1 && d[0] >= 1 && d[0] <= 20 && d[1] >= 1 && d[1] <= 20;
}


/* the next id of the stream stand-in */

static void
fuzz_next_hid(u_char *buf, size_t *len)
{
    *len = ngx_sprintf(buf, "%uL-0", FUZZ_STREAM_MS + ++fuzz_stream_seq)
           - buf;
}


/* the newest id of the stream stand-in, "0-0" while it has none */

static void
fuzz_newest_hid(u_char *buf, size_t *len)
{
    if (fuzz_stream_seq == 0) {
        *len = ngx_sprintf(buf, "0-0") - buf;
        return;
    }

    *len = ngx_sprintf(buf, "%uL-0", FUZZ_STREAM_MS + fuzz_stream_seq)
           - buf;
}


/* the model of a user of the registry; create: made if it is not there */

static fuzz_user_t *
fuzz_user(ngx_str_t *id, ngx_uint_t create)
{
    ngx_uint_t    i;
    fuzz_user_t  *um;

    for (i = 0; i < fuzz_nusers; i++) {
        if (fuzz_str_eq(&fuzz_users[i].id, id)) {
            return &fuzz_users[i];
        }
    }

    if (!create) {
        return NULL;
    }

    fuzz_assert(fuzz_nusers < FUZZ_CONNS + 1);

    um = &fuzz_users[fuzz_nusers++];
    ngx_memzero(um, sizeof(fuzz_user_t));
    fuzz_str_dup(&um->id, id);

    return um;
}


static void
fuzz_user_drop(ngx_str_t *id)
{
    fuzz_user_t  *um;

    um = fuzz_user(id, 0);

    if (um) {
        free(um->id.data);
        *um = fuzz_users[--fuzz_nusers];
    }
}


/*
 * The worker heard a stream id of the user's history
 * (ngx_ws_relay_history_heard()): the newest it knows, if it is newer
 */

static void
fuzz_user_heard(ngx_str_t *user, ngx_str_t *id)
{
    ngx_int_t     c;
    ngx_str_t     last;
    ngx_uint_t    known;
    fuzz_user_t  *um;

    fuzz_assert(fuzz_id_ok(id) && id->len <= NGX_WS_RELAY_ID_LEN);

    um = fuzz_user(user, 1);

    if (um->last_len) {
        last.data = um->last;
        last.len = um->last_len;

        c = fuzz_id_cmp(id, &last, &known);
        fuzz_assert(known);

        if (c <= 0) {
            return;
        }
    }

    ngx_memcpy(um->last, id->data, id->len);
    um->last_len = id->len;
}


static ngx_uint_t
fuzz_is_subscribed(json_t *user, ngx_str_t *id)
{
    fuzz_user_t  *um;

    um = fuzz_user(id, 0);

    return um && um->heard;
}


static void
fuzz_subscribed_set(ngx_str_t *id, ngx_uint_t on)
{
    fuzz_user_t  *um;

    um = fuzz_user(id, on);

    if (um) {
        um->heard = on;
    }
}


/* after each record: replies owed are sent, the registry adds up */

static void
fuzz_check_after(void)
{
    ngx_uint_t    i;
    fuzz_out_t   *m;
    fuzz_hist_t  *h;

    fuzz_check_registry();

    for (i = 0; i < FUZZ_CONNS; i++) {
        h = &fuzz_hists[i];

        if (!fuzz_lenient()) {
            /* what was owed went out, but for what the model is unsure of */
            for (m = h->out; m; m = m->next) {
                if (!m->optional) {
                    fprintf(stderr, "connection %u was not sent: %.*s\n",
                            (unsigned) i, (int) m->text.len, m->text.data);
                }

                fuzz_assert(m->optional);
            }
        }

        fuzz_out_free(&h->out);
        h->out_tail = &h->out;
    }

    if (fuzz_lenient()) {
        return;
    }

    for (i = 0; i < FUZZ_CONNS; i++) {
        h = &fuzz_hists[i];

        if (fuzz_fifos[i].head) {
            /* the oldest delivery would have gone out if it were over */
            fuzz_assert(!fuzz_fifos[i].head->pub->done);
            fuzz_assert(fuzz_redis_up);
        }

        if (fuzz_conns[i] == NULL) {
            continue;
        }

        /* the history's state is the model's */
        fuzz_assert((fuzz_conns[i]->wc.resume != NULL) == h->resuming);
        fuzz_assert(h->join == NULL || h->resuming);
        fuzz_assert(h->resuming || h->held == NULL);
        fuzz_assert(!h->waiting || h->resuming);
        fuzz_assert(!h->reading || h->resuming);
    }
}


static void
fuzz_check_registry(void)
{
    ngx_uint_t            i, k, n, users, same;
    ngx_queue_t          *q, *uq;
    fuzz_user_t          *um;
    fuzz_conn_t          *fc, *other;
    ngx_ws_relay_conn_t  *wc;
    ngx_ws_relay_user_t  *user;

    n = 0;
    users = 0;

    for (i = 0; i < FUZZ_CONNS; i++) {
        fc = fuzz_conns[i];

        if (fc == NULL) {
            continue;
        }

        fuzz_assert(fc->wc.registered == fuzz_taken[i]);

        if (!fuzz_taken[i]) {
            fuzz_assert(fc->wc.user == NULL);
            continue;
        }

        n++;

        user = fc->wc.user;

        if (user == NULL) {
            fuzz_assert(!fc->wc.user_fixed);
            continue;
        }

        fuzz_assert(ngx_ws_relay_registry_find_user(&user->sn.str) == user);

        /* its connections: exactly ours with this user */
        same = 0;
        for (k = 0; k < FUZZ_CONNS; k++) {
            other = fuzz_conns[k];
            if (other && other->wc.user == user) {
                same++;
                if (k < i) {
                    break;
                }
            }
        }

        if (k < i) {
            continue;
        }

        users++;
        fuzz_assert(user->nconnections == same);

        k = 0;
        for (uq = ngx_queue_head(&user->connections);
             uq != ngx_queue_sentinel(&user->connections);
             uq = ngx_queue_next(uq))
        {
            wc = ngx_queue_data(uq, ngx_ws_relay_conn_t, user_queue);
            fuzz_assert(wc->user == user);
            k++;
        }

        fuzz_assert(k == same);

        /* the bus stand-ins know the user */
        for (k = 0; k < fuzz_njoined; k++) {
            if (fuzz_joined[k].len == user->sn.str.len
                && ngx_memcmp(fuzz_joined[k].data, user->sn.str.data,
                              user->sn.str.len) == 0)
            {
                break;
            }
        }

        fuzz_assert(k < fuzz_njoined);

        /*
         * the bus hears its channel, or not, and the worker knows the
         * newest id of its history, as the model says
         */
        if (!fuzz_lenient()) {
            fuzz_assert(user->subscribed
                        == fuzz_is_subscribed(NULL, &user->sn.str));

            um = fuzz_user(&user->sn.str, 0);

            fuzz_assert(um ? (user->last_id.len == um->last_len
                              && ngx_memcmp(user->last_id.data, um->last,
                                            um->last_len) == 0)
                           : user->last_id.len == 0);
        }
    }

    fuzz_assert(ngx_ws_relay_registry_connections() == n);
    fuzz_assert(fuzz_slot.connections == n && fuzz_slot.users == users);
    fuzz_assert(fuzz_njoined == users);

    k = 0;
    for (q = ngx_queue_head(ngx_ws_relay_registry_users());
         q != ngx_queue_sentinel(ngx_ws_relay_registry_users());
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);
        fuzz_assert(user->nconnections > 0);
        k++;
    }

    fuzz_assert(k == users);
}


static ngx_uint_t
fuzz_lenient(void)
{
    return fuzz_alloc_failed() || fuzz_collided;
}


static ngx_uint_t
fuzz_str_is(json_t *json, const char *key, const void *value, size_t len)
{
    json_t  *s;

    s = json_object_get(json, key);

    return json_is_string(s)
           && json_string_length(s) == len
           && (len == 0 || memcmp(json_string_value(s), value, len) == 0);
}


/* an integer member, written as one */

static ngx_uint_t
fuzz_int_is(fuzz_doc_t *doc, const char *key, json_int_t value)
{
    char  buf[32];

    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, value);

    return fuzz_text_is(doc, key, (u_char *) buf, strlen(buf));
}


static ngx_uint_t
fuzz_user_is(fuzz_conn_t *fc, json_t *user)
{
    if (fc == NULL || fc->wc.user == NULL) {
        return 0;
    }

    return fuzz_json_is_wtf8(user, fc->wc.user->sn.str.data,
                             fc->wc.user->sn.str.len);
}


/* the connection is one of the user's */

static ngx_uint_t
fuzz_conn_of(fuzz_conn_t *fc, ngx_str_t *user_id)
{
    return fc && fc->wc.user && fc->wc.user->sn.str.len == user_id->len
           && ngx_memcmp(fc->wc.user->sn.str.data, user_id->data,
                         user_id->len) == 0;
}


static ngx_uint_t
fuzz_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


/* the README: a message names its sender by user id, else connection id */

static ngx_str_t *
fuzz_sender(fuzz_conn_t *fc)
{
    if (fc->wc.user) {
        return &fc->wc.user->sn.str;
    }

    return &fc->wc.id;
}


static void
fuzz_str_dup(ngx_str_t *dst, ngx_str_t *src)
{
    dst->data = malloc(src->len ? src->len : 1);
    fuzz_assert(dst->data != NULL);

    if (src->len) {
        ngx_memcpy(dst->data, src->data, src->len);
    }

    dst->len = src->len;
}

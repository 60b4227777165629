
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: the JSON message router, ngx_ws_relay_router_open(),
 * _message() and _close(), with the real registry, delivery and JSON
 * code, four connections and the bus stubbed (Redis down, or up with
 * PUBLISH replies and acks the input decides).
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
 *                    6: the ack timeout passes
 *                    7: control bit 5: the connection closes and a new
 *                       one takes its place; else it starts or stops
 *                       refusing frames
 *
 * Connections open through the router: the welcome (or the refusal at
 * capacity) is the reply due, and a user that is not fixed registers with
 * a message.  Each message is also read by a model of the protocol (README,
 * "Wire protocol") that says which reply is due, with JSON as JavaScript
 * reads it (fuzz_json.h): the last of duplicate members counts, a field
 * that JavaScript calls falsy is as good as missing, values go out as
 * their text without white space (checked byte for byte, and by value), an
 * unknown type is named as String(type) names it, and user ids are strings
 * of WTF-8.  Every frame the router sends must be a JSON object with no
 * duplicate member and a string "type" ("error": with a string "message")
 * and be the reply due: one per message, the delivery results of one
 * connection in the order of its requests, with "delivered" and
 * "connections" the count of connections that took the message.  A
 * delivered message goes to every connection of the target, and only to
 * them, with the right sender.  The registry is checked against the
 * connections after each record, and against what the bus stand-ins were
 * told (joined, left); the harness keeps its own list of open connections
 * to count them.  After the input every connection closes: nothing may
 * be left in the registry, in the timers, or in jansson's heap.
 *
 * Once an allocation failed, or a message has text that the oracle's
 * images of surrogates could be confused with (fuzz_json.h), replies may
 * be missing or different: only their form, the registry and the leaks
 * are checked from then on.

 */


#include "fuzz_ngx.h"
#include "fuzz_json.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_delivery.h"
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
    FUZZ_F_N
} fuzz_field_e;


typedef enum {
    FUZZ_REPLY_ERROR = 0,
    FUZZ_REPLY_WELCOME,
    FUZZ_REPLY_REGISTER,
    FUZZ_REPLY_PONG,
    FUZZ_REPLY_ECHO,
    FUZZ_REPLY_CHAT_DELIVERED,
    FUZZ_REPLY_NOTIFICATION_RESULT
} fuzz_reply_e;


typedef struct fuzz_pub_s     fuzz_pub_t;
typedef struct fuzz_expect_s  fuzz_expect_t;


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
    ngx_uint_t        calls[FUZZ_CONNS];
    ngx_uint_t        local;
    u_char           *text;
    size_t            text_len;
} fuzz_call_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_setup(u_char settings);
static void fuzz_teardown(void);
static void fuzz_record(const u_char *p, size_t len);
static void fuzz_open(ngx_uint_t i, const char *user, ngx_uint_t fixed);
static void fuzz_register(ngx_uint_t i, const char *user);
static void fuzz_close(ngx_uint_t i);
static void fuzz_message(ngx_uint_t i, const u_char *data, size_t len);
static fuzz_expect_t *fuzz_expect(fuzz_conn_t *fc, const u_char *data,
    size_t len);
static void fuzz_expect_error(fuzz_expect_t *e, const void *text,
    size_t len);
static void fuzz_expect_free(fuzz_expect_t *e);
static fuzz_pub_t *fuzz_pub_get(u_char k, ngx_uint_t unanswered);
static ngx_uint_t fuzz_pub_settled(fuzz_pub_t *pub);
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
static ngx_str_t *fuzz_sender(fuzz_conn_t *fc);
static void fuzz_str_dup(ngx_str_t *dst, ngx_str_t *src);


static fuzz_conn_t  *fuzz_conns[FUZZ_CONNS];
static fuzz_fifo_t   fuzz_fifos[FUZZ_CONNS];
static fuzz_pub_t   *fuzz_pubs;
static fuzz_call_t   fuzz_call;
static ngx_uint_t    fuzz_serial;
static ngx_uint_t    fuzz_redis_up;
/* a message had text the oracle could confuse: lenient from then on */
static ngx_uint_t    fuzz_collided;
/* the connections the router took (not refused at capacity) */
static ngx_uint_t    fuzz_taken[FUZZ_CONNS];
static uint64_t      fuzz_last_id;

/* users the bus stand-ins were told about */
static ngx_str_t     fuzz_joined[FUZZ_CONNS + 1];
static ngx_uint_t    fuzz_njoined;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_assert(strlen(FUZZ_ODD_USER) == NGX_WS_RELAY_MAX_USER_ID);

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
    fuzz_redis_up = (settings & FUZZ_REDIS_UP) ? 1 : 0;
    fuzz_collided = 0;
    fuzz_serial = 0;
    fuzz_last_id = 0;

    fuzz_main_conf.max_connections = (settings & FUZZ_CAPACITY) ? 3 : 4000;

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
    ngx_uint_t   i;
    fuzz_pub_t  *pub;

    /* deliveries still waiting for acks time out */

    for (pub = fuzz_pubs; pub; pub = pub->next) {
        pub->done = 1;
    }

    fuzz_time_pass(fuzz_main_conf.redis.ack_timeout);

    if (!fuzz_lenient()) {
        /* every message got its reply */
        for (i = 0; i < FUZZ_CONNS; i++) {
            fuzz_assert(fuzz_fifos[i].head == NULL);
        }
    }

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_close(i);
    }

    fuzz_assert(ngx_ws_relay_registry_connections() == 0);
    fuzz_assert(ngx_queue_empty(ngx_ws_relay_registry_users()));
    fuzz_assert(fuzz_slot.connections == 0 && fuzz_slot.users == 0);
    fuzz_assert(fuzz_njoined == 0);

    while (fuzz_pubs) {
        pub = fuzz_pubs;
        fuzz_pubs = pub->next;
        fuzz_assert(pub->expect == NULL);
        free(pub);
    }

    /* every jansson value the router made is freed: no reference leaks */
    fuzz_assert(fuzz_json_live() == 0);

    fuzz_ngx_reset();
}


static void
fuzz_record(const u_char *p, size_t len)
{
    u_char       ctl, k, v;
    ngx_uint_t   i, op;
    fuzz_pub_t  *pub;

    ctl = p[0];
    i = ctl & 3;
    op = (ctl >> 2) & 7;
    p++;
    len--;

    k = len > 0 ? p[0] : 0;
    v = len > 1 ? p[1] : 0;

    switch (op) {

    case FUZZ_OP_PUBLISHED:
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
        for (pub = fuzz_pubs; pub; pub = pub->next) {
            pub->done = 1;
        }

        fuzz_time_pass(fuzz_main_conf.redis.ack_timeout);
        break;

    case FUZZ_OP_CONN:
        if (ctl & 0x20) {
            fuzz_close(i);
            fuzz_open(i, NULL, 0);

        } else {
            fuzz_conns[i]->refuse = !fuzz_conns[i]->refuse;
        }

        break;

    default:
        if (fuzz_conns[i]->close_code == 0) {
            /* a connection refused or closed reads no more */
            fuzz_message(i, p, len);
        }

        return;
    }

    fuzz_check_after();
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

    if (user && !fixed && rc == NGX_OK) {
        fuzz_register(i, user);
    }

    fuzz_check_registry();
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
    fuzz_conn_t    *fc;
    fuzz_expect_t  *e;

    fc = fuzz_conns[i];

    fuzz_taken[i] = 0;
    fuzz_conn_close(fc);

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
    ngx_uint_t      k, lenient, deliver;
    fuzz_conn_t    *fc;
    fuzz_fifo_t    *fifo;
    fuzz_expect_t  *e;

    fc = fuzz_conns[i];
    fifo = &fuzz_fifos[i];
    lenient = fuzz_lenient();

    e = fuzz_expect(fc, data, len);

    /* a delivery's expectation goes with its reply, maybe during the call */
    deliver = (e->pub != NULL);
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

        if (!deliver) {
            fuzz_assert(fuzz_call.answered == 1);

            if (e->kind == FUZZ_REPLY_REGISTER) {
                fuzz_assert(fuzz_user_is(fc, user));
            }

        } else {
            /* the target's connections, each once, and no other */
            for (k = 0; k < FUZZ_CONNS; k++) {
                fuzz_assert(fuzz_call.calls[k]
                            == fuzz_user_is(fuzz_conns[k], target));
            }
        }
    }

    free(fuzz_call.text);
    ngx_memzero(&fuzz_call, sizeof(fuzz_call_t));

    if (!deliver) {
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
    ngx_uint_t       i, route;
    fuzz_buf_t       b;
    fuzz_doc_t       doc;
    fuzz_pub_t      *pub;
    fuzz_member_t   *m;
    fuzz_expect_t   *e;

    static const char  *names[] = {
        "type", "userId", "targetUserId", "text", "action", "data"
    };

    static const char  *routes[] = {
        "register", "ping", "chat", "notification", NULL
    };

    fuzz_fail_pause(1);

    e = calloc(1, sizeof(fuzz_expect_t));
    fuzz_assert(e != NULL);

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

    switch (route) {

    case 0:
        field = e->field[FUZZ_F_USER_ID];

        if (fuzz_js_falsy(field)) {
            fuzz_expect_error(e, "Missing userId in register message", 0);

        } else if (!json_is_string(field)) {
            fuzz_expect_error(e, "userId must be a string", 0);

        } else if (json_string_length(field) > NGX_WS_RELAY_MAX_USER_ID) {
            fuzz_expect_error(e, "userId is too long", 0);

        } else if (fc->wc.user_fixed && !fuzz_user_is(fc, field)) {
            fuzz_expect_error(e, "Cannot register as another user: "
                                 "the user id is set by the server", 0);

        } else {
            e->kind = FUZZ_REPLY_REGISTER;
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
        fuzz_pubs = pub;

        e->pub = pub;
    }

done:

    fuzz_doc_free(&doc);
    fuzz_fail_pause(0);

    return e;
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


/* the k-th delivery that went to Redis (still unanswered: only those) */

static fuzz_pub_t *
fuzz_pub_get(u_char k, ngx_uint_t unanswered)
{
    ngx_uint_t   n;
    fuzz_pub_t  *pub;

    n = 0;

    for (pub = fuzz_pubs; pub; pub = pub->next) {
        if (pub->id && !(unanswered && pub->answered)) {
            n++;
        }
    }

    if (n == 0) {
        return NULL;
    }

    k %= n;

    for (pub = fuzz_pubs; pub; pub = pub->next) {
        if (pub->id && !(unanswered && pub->answered) && k-- == 0) {
            return pub;
        }
    }

    return NULL;
}


/* a chat is settled by the first connection it reaches, acks or not */

static ngx_uint_t
fuzz_pub_settled(fuzz_pub_t *pub)
{
    return pub->expect && pub->expect->kind == FUZZ_REPLY_CHAT_DELIVERED
           && pub->delivered > 0;
}


/* the stubs of ngx_ws_relay_conn.c: a reply to a client */

ngx_int_t
fuzz_on_reply(fuzz_conn_t *fc, u_char *data, size_t len)
{
    json_t         *reply;
    fuzz_doc_t      doc;
    fuzz_fifo_t    *fifo;
    fuzz_expect_t  *e;

    fuzz_trace("reply to %u: %.*s", (unsigned) fc->index, (int) len, data);

    fuzz_fail_pause(1);
    fuzz_doc_read(&doc, data, len);
    fuzz_fail_pause(0);

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
        fuzz_assert(json_object_size(reply) == 4);
        fuzz_assert(fuzz_str_is(reply, "type", "register", 8));
        fuzz_assert(fuzz_str_is(reply, "status", "success", 7));
        fuzz_assert(json_equal(json_object_get(reply, "userId"),
                               e->field[FUZZ_F_USER_ID]));
        fuzz_assert(fuzz_int_is(doc, "timestamp", now));
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
            fuzz_assert(json_object_size(reply) == 4);
            fuzz_assert(fuzz_str_is(reply, "type", "chat_delivered", 14));

        } else {
            fuzz_assert(json_object_size(reply) == 5);
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

        fuzz_assert(fuzz_int_is(doc, "timestamp", now));
        break;
    }
}


/* the stubs of ngx_ws_relay_conn.c: a message for a target's connection */

ngx_int_t
fuzz_on_delivery(fuzz_conn_t *fc, u_char *data, size_t len)
{
    fuzz_doc_t  doc;

    /* deliveries start only from a message, and only to its target */
    fuzz_assert(fuzz_call.conn != NULL);
    fuzz_assert(fuzz_call.deliver != NULL);
    fuzz_assert(fc->wc.user != NULL);

    fuzz_trace("delivery to %u: %.*s", (unsigned) fc->index, (int) len, data);

    fuzz_call.calls[fc->index]++;

    /* one text for every connection of the target */

    if (fuzz_call.text == NULL) {
        fuzz_call.text = malloc(len ? len : 1);
        fuzz_assert(fuzz_call.text != NULL);
        ngx_memcpy(fuzz_call.text, data, len);
        fuzz_call.text_len = len;

        fuzz_fail_pause(1);
        fuzz_doc_read(&doc, data, len);
        fuzz_fail_pause(0);

        fuzz_check_form(&doc);

        if (!fuzz_lenient()) {
            fuzz_check_delivery(fuzz_call.deliver, &doc);
        }

        fuzz_doc_free(&doc);

    } else {
        fuzz_assert(len == fuzz_call.text_len
                    && ngx_memcmp(data, fuzz_call.text, len) == 0);
    }

    if (fc->refuse) {
        return NGX_ERROR;
    }

    fuzz_call.local++;

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


/* the bus, as the router and delivery call it: no Redis here */

ngx_int_t
ngx_ws_relay_bus_publish(ngx_str_t *user_id, ngx_str_t *text, uint64_t id)
{
    json_t      *target;
    fuzz_pub_t  *pub;

    fuzz_assert(fuzz_call.deliver != NULL);
    fuzz_assert(id > fuzz_last_id);
    fuzz_last_id = id;

    pub = fuzz_call.deliver->pub;
    target = fuzz_call.deliver->field[FUZZ_F_TARGET];

    fuzz_assert(fuzz_json_is_wtf8(target, user_id->data, user_id->len));

    /* the text other workers deliver is the one delivered here */
    fuzz_assert(fuzz_call.text == NULL
                || (text->len == fuzz_call.text_len
                    && ngx_memcmp(text->data, fuzz_call.text, text->len)
                       == 0));

    pub->delivered = fuzz_call.local;

    if (!fuzz_redis_up) {
        pub->done = 1;
        return NGX_DECLINED;
    }

    pub->id = id;

    pub->done = fuzz_pub_settled(pub);

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


/* after each record: replies owed are sent, the registry adds up */

static void
fuzz_check_after(void)
{
    ngx_uint_t  i;

    fuzz_check_registry();

    if (fuzz_lenient()) {
        return;
    }

    for (i = 0; i < FUZZ_CONNS; i++) {
        if (fuzz_fifos[i].head) {
            /* the oldest delivery would have gone out if it were over */
            fuzz_assert(!fuzz_fifos[i].head->pub->done);
            fuzz_assert(fuzz_redis_up);
        }
    }
}


static void
fuzz_check_registry(void)
{
    ngx_uint_t            i, k, n, users, same;
    ngx_queue_t          *q, *uq;
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

    ngx_memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
}

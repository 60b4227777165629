/*
 * wsload's busy mode: one client must not stall a worker.  A bomber sends,
 * as fast as its socket takes them, small permessage-deflate messages
 * that each inflate to a large JSON text (bomb.h: a valid chat of a huge
 * array of numbers, then arrays nested without end, then a chat whose
 * array never closes, in turn).  Meanwhile a victim on the bomber's
 * worker (welcome.processId) pings on a fixed schedule and times each
 * pong from its scheduled time, and chat pairs across workers chat on a
 * fixed schedule and count chat_delivered true/false.
 *
 * Two threads: the bomber alone on one, so that reading its answers
 * (inflating each echoed chat) never delays the victim; the victim and
 * the chat pairs on the other.  Their sends are the engine's open loop:
 * cfg.rate over the victim and the pairs, the same share each.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bomb.h"
#include "engine.h"
#include "json.h"

#define BUSY_QUEUE         65536     /* bytes the bomber keeps queued */
#define BUSY_PINGS         65536     /* pings in flight at most */

/* the bombs, compressed once, and the turn of their kinds (thread 0's) */
static uint8_t      *bombs[BOMB_KINDS];
static size_t        bomb_len[BOMB_KINDS];
static bomb_kind_t   turn[16];
static int           nturn;
static unsigned      bomb_next;

static wl_conn_t    *bomber;
static wl_conn_t    *victim;
static long          victim_tries;

/* the bomber's worker: 0 not known yet, -1 the bomber failed */
static int           bomber_pid;

/* scheduled times of the victim's pings in flight (thread 1's) */
static uint64_t      pings[BUSY_PINGS];
static size_t        pings_head;
static size_t        pings_len;


/* Compresses each kind of bomb once: every bomb of a kind is the same. */
static void
bombs_init(void)
{
    pmd_stream_t    d;
    const uint8_t  *z;
    char           *text;
    size_t          zlen;
    int             k;

    memset(&d, 0, sizeof(d));

    nturn = bomb_kinds_parse(cfg.bombs, turn, 16);
    if (nturn <= 0) {
        die("--bombs: a comma-separated list of chat, deep, unclosed "
            "(16 at most)");
    }

    text = malloc((size_t) cfg.bomb_size);
    if (text == NULL) {
        die("out of memory");
    }

    for (k = 0; k < BOMB_KINDS; k++) {
        if (bomb_text((bomb_kind_t) k, text, (size_t) cfg.bomb_size) != 0
            || pmd_deflate(&d, text, (size_t) cfg.bomb_size, &z, &zlen) != 0)
        {
            die("cannot make the %s bomb", bomb_kind_names[k]);
        }

        bombs[k] = malloc(zlen);
        if (bombs[k] == NULL) {
            die("out of memory");
        }
        memcpy(bombs[k], z, zlen);
        bomb_len[k] = zlen;
    }

    pmd_free(&d);
    free(text);
}


static long
busy_sockets(void)
{
    return 2 + 2 * cfg.pairs;
}


/* Thread 0: the bomber.  Thread 1: the victim (pair 0) and chat pairs. */
static void
busy_thread_init(wl_thread_t *th, long n)
{
    size_t  i;

    (void) n;

    if (th->index == 0) {
        thread_alloc(th, 1, 0);
        conn_init(&th->conns[0], th, ROLE_BOMBER, "b", 0);
        bomber = &th->conns[0];
        bombs_init();
        return;
    }

    thread_alloc(th, 1 + 2 * (size_t) cfg.pairs, 1 + (size_t) cfg.pairs);

    conn_init(&th->conns[0], th, ROLE_VICTIM, "v", 0);
    victim = &th->conns[0];
    th->pairs[0].snd = victim;
    victim->pair = &th->pairs[0];

    for (i = 1; i < th->npairs; i++) {
        th->pairs[i].index = (int) i;
        th->pairs[i].snd = &th->conns[2 * i - 1];
        th->pairs[i].rcv = &th->conns[2 * i];
        conn_init(&th->conns[2 * i - 1], th, ROLE_SENDER, "s", i);
        conn_init(&th->conns[2 * i], th, ROLE_RECEIVER, "r", i);
        th->conns[2 * i - 1].pair = &th->pairs[i];
        th->conns[2 * i].pair = &th->pairs[i];
    }

    th->rate = cfg.rate;
}


/*
 * The victim goes where the bomber is: it reconnects as a fresh user
 * until its welcome.processId is the bomber's (cfg.placement_tries at
 * most).
 */
static int
busy_placed(wl_thread_t *th)
{
    int  pid;

    if (th->index == 0) {
        pid = bomber->state == CS_READY && bomber->pid ? bomber->pid : -1;
        __atomic_store_n(&bomber_pid, pid, __ATOMIC_RELEASE);
        return 1;
    }

    pid = __atomic_load_n(&bomber_pid, __ATOMIC_ACQUIRE);

    if (pid == 0) {
        return 0;
    }

    if (pid < 0 || victim->state != CS_READY) {
        return 1;
    }

    if (victim->pid == pid) {
        th->res.c[WC_victim_placed]++;
        return 1;
    }

    if (victim_tries >= cfg.placement_tries) {
        return 1;
    }

    conn_reconnect(victim, ++victim_tries);
    return 0;
}


/* Open loop: the victim pings, the chat pairs chat. */
static void
busy_send(wl_thread_t *th, wl_pair_t *p, uint64_t sched)
{
    static const char  ping[] = "{\"type\":\"ping\"}";

    if (p->snd != victim) {
        chat_send(th, p, sched);
        return;
    }

    if (pings_len == BUSY_PINGS
        || conn_queue_frame(victim, WS_OP_TEXT, ping, sizeof(ping) - 1) != 0)
    {
        return;
    }

    pings[(pings_head + pings_len++) % BUSY_PINGS] = sched;
    th->res.c[WC_pings_sent]++;
}


/*
 * The bomber keeps BUSY_QUEUE bytes queued while the run lasts, so the
 * socket takes bombs as fast as the server reads them.  When the run is
 * over it resets its connection: what the server has not read yet would
 * keep it busy long after, and a close frame would wait behind it.
 */
static void
busy_pass(wl_thread_t *th)
{
    struct linger  lg = { 1, 0 };
    uint64_t       now;
    int            k, phase;

    if (th->index != 0 || bomber->fd < 0 || bomber->state != CS_READY) {
        return;
    }

    phase = phase_get();

    if (phase >= PH_DRAIN) {
        setsockopt(bomber->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        conn_close_fd(bomber);
        return;
    }

    if (phase != PH_RUN || !bomber->reasm.deflate) {
        return;
    }

    now = now_ns();

    while (bomber->wlen - bomber->woff < BUSY_QUEUE) {
        k = (int) turn[bomb_next % (unsigned) nturn];

        if (conn_queue_compressed(bomber, WS_OP_TEXT, bombs[k], bomb_len[k],
                                  (size_t) cfg.bomb_size)
            != 0)
        {
            return;
        }

        bomb_next++;
        th->res.c[WC_bombs_sent]++;

        if (now >= g_meas_start && now < g_meas_end) {
            th->res.c[WC_bombs_sent_window]++;
        }
    }
}


static void
on_bomb_answer(wl_thread_t *th, const char *m, size_t n, const char *type,
    size_t tlen, uint64_t now)
{
    if (WL_TYPE_IS(type, tlen, "chat")) {
        th->res.c[WC_bomb_echoes]++;

    } else if (WL_TYPE_IS(type, tlen, "error")
               && json_str_eq(m, n, "message", "Invalid message format"))
    {
        th->res.c[WC_bomb_refusals]++;

    } else {
        th->res.c[WC_bomb_other]++;
    }

    if (now >= g_meas_start && now < g_meas_end) {
        th->res.c[WC_bomb_answers_window]++;
    }
}


static void
on_pong(wl_thread_t *th, uint64_t now)
{
    uint64_t  sched;

    if (pings_len == 0) {
        th->res.c[WC_unexpected]++;
        return;
    }

    sched = pings[pings_head];
    pings_head = (pings_head + 1) % BUSY_PINGS;
    pings_len--;

    th->res.c[WC_pongs]++;

    if (sched >= g_meas_start && sched < g_meas_end && now >= sched) {
        th->res.c[WC_pongs_window]++;
        hist_record(&th->res.h[WH_PING], now - sched);
    }
}


static int
busy_message(wl_thread_t *th, wl_conn_t *c, const char *m, size_t n,
    const char *type, size_t tlen, uint64_t now)
{
    if (c->role == ROLE_BOMBER) {
        on_bomb_answer(th, m, n, type, tlen, now);
        return 1;
    }

    if (c->role == ROLE_VICTIM && WL_TYPE_IS(type, tlen, "pong")) {
        on_pong(th, now);
        return 1;
    }

    return chat_message(th, c, m, n, type, tlen, now);
}


/* Every ping has its pong (the bomber has no answers to wait for). */
static int
busy_drained(wl_thread_t *th)
{
    return th->index == 0 || pings_len == 0;
}


static void
busy_finish(wl_thread_t *th)
{
    int  k;

    if (th->index != 0) {
        th->res.c[WC_pings_lost] += pings_len;
        return;
    }

    for (k = 0; k < BOMB_KINDS; k++) {
        free(bombs[k]);
        bombs[k] = NULL;
    }
}


const wl_mode_ops_t  wl_busy_mode = {
    .units = &cfg.pairs,
    .lost = WC_lost,
    .sockets = busy_sockets,
    .thread_init = busy_thread_init,
    .placed = busy_placed,
    .send = busy_send,
    .pass = busy_pass,
    .message = busy_message,
    .drained = busy_drained,
    .finish = busy_finish,
};


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include <ngx_sha1.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_frame.h"
#include "ngx_ws_relay_history.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_shm.h"


/* a page of replay: at most this many messages, and about this many bytes */
#define NGX_WS_RELAY_REPLAY_COUNT  64
#define NGX_WS_RELAY_REPLAY_BYTES  (256 * 1024)


/* a connection on its way to its user's live messages */
typedef struct {
    /* NULL: the connection went while Redis was asked */
    ngx_ws_relay_conn_t             *wc;
    ngx_ws_relay_history_joined_pt   handler;
    ngx_uint_t                       type;

    /* the newest id the client has */
    ngx_ws_relay_id_t        since;

    /* live messages that came meanwhile, of ngx_ws_relay_held_t */
    ngx_queue_t                      held;
    size_t                           held_bytes;

    /* the wait for the user's channel */
    ngx_event_t                      timer;

    unsigned                         replay:1;
    unsigned                         reading:1;
    unsigned                         replied:1;
} ngx_ws_relay_resume_t;


typedef struct {
    ngx_queue_t                      queue;
    ngx_str_t                        id;
    ngx_str_t                        text;
} ngx_ws_relay_held_t;


static void ngx_ws_relay_history_read(ngx_ws_relay_resume_t *r);
static void ngx_ws_relay_history_page(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_ws_relay_history_top(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_ws_relay_history_send(ngx_ws_relay_conn_t *wc,
    ngx_str_t *json, ngx_str_t *id);
static void ngx_ws_relay_history_live(ngx_ws_relay_resume_t *r,
    ngx_int_t recovered);
static void ngx_ws_relay_history_timeout(ngx_event_t *ev);
static ngx_uint_t ngx_ws_relay_history_advance(ngx_ws_relay_id_t *last,
    ngx_str_t *id);
static void ngx_ws_relay_history_free(ngx_ws_relay_resume_t *r);


/*
 * KEYS[1] the user's stream, KEYS[2] its meta hash.
 * Store:  "p", ttl ms, size, meta ttl ms, channel, head, JSON
 *         -> { id, the PUBLISH's receivers }; "s": with SPUBLISH (a
 *         Redis Cluster's sharded pub/sub)
 * Replay: "r", ttl ms, since, count, bytes
 *         -> { recovered 1|0, more 1|0, newest id, id, JSON, id, JSON, ... }
 * Top:    "t" -> the newest id
 * Both first forget what is older than the ttl, remembering the newest
 * id forgotten in "lost"; trimming by size does the same.  The oldest
 * entries are read from the head of the stream: usually none is due.  "base" is the
 * first id the meta hash saw: a since before it is from a history that
 * Redis no longer has (it expired, or Redis lost its data).
 */

ngx_str_t  ngx_ws_relay_history_script = ngx_string(
"local k, m = KEYS[1], KEYS[2]\n"
"if ARGV[1] == 't' then return redis.call('HGET', m, 'top') or '0-0' end\n"
"local t = redis.call('TIME')\n"
"local cutoff = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"                - tonumber(ARGV[2])) .. '-0'\n"
"local from, gone = '-', nil\n"
"repeat\n"
"  local old = redis.call('XRANGE', k, from, '(' .. cutoff, 'COUNT', 64)\n"
"  if #old > 0 then\n"
"    gone = old[#old][1]\n"
"    from = '(' .. gone\n"
"  end\n"
"until #old < 64\n"
"if gone then\n"
"  redis.call('HSET', m, 'lost', gone)\n"
"  redis.call('XTRIM', k, 'MINID', cutoff)\n"
"end\n"
"if ARGV[1] == 'p' or ARGV[1] == 's' then\n"
"  local size = tonumber(ARGV[3])\n"
"  local n = redis.call('XLEN', k)\n"
"  if n >= size then\n"
"    local gone = redis.call('XRANGE', k, '-', '+', 'COUNT', n - size + 1)\n"
"    redis.call('HSET', m, 'lost', gone[#gone][1])\n"
"  end\n"
"  local id = redis.call('XADD', k, 'MAXLEN', size, '*', 'm', ARGV[7])\n"
"  redis.call('HSET', m, 'top', id)\n"
"  redis.call('HSETNX', m, 'base', id)\n"
"  redis.call('PEXPIRE', k, ARGV[2])\n"
"  redis.call('PEXPIRE', m, ARGV[4])\n"
"  local pub = ARGV[1] == 's' and 'SPUBLISH' or 'PUBLISH'\n"
"  return {id, redis.call(pub, ARGV[5], ARGV[6] .. id .. ' ' .. ARGV[7])}\n"
"end\n"
"local function le(a, b)\n"
"  local am, as = string.match(a, '^(%d+)-(%d+)$')\n"
"  local bm, bs = string.match(b, '^(%d+)-(%d+)$')\n"
"  if not am or not bm then return false end\n"
"  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)\n"
"  return am < bm or (am == bm and as <= bs)\n"
"end\n"
"local since = ARGV[3]\n"
"local meta = redis.call('HMGET', m, 'top', 'lost', 'base')\n"
"local exists = redis.call('EXISTS', k) == 1\n"
"local lost = meta[2]\n"
"if not exists then lost = meta[1] end\n"
"local out = {0, 0, meta[1] or '0-0'}\n"
"if meta[3] and since ~= '0-0' and not le(meta[3], since) then\n"
"  out[1] = 0\n"
"elseif lost then\n"
"  if le(lost, since) then out[1] = 1 end\n"
"elseif exists or since == '0-0' then\n"
"  out[1] = 1\n"
"end\n"
"local count, budget, bytes = tonumber(ARGV[4]), tonumber(ARGV[5]), 0\n"
"local e = redis.call('XRANGE', k, '(' .. since, '+', 'COUNT', count)\n"
"for i = 1, #e do\n"
"  local json = e[i][2][2]\n"
"  if i > 1 and bytes + #json > budget then\n"
"    out[2] = 1\n"
"    return out\n"
"  end\n"
"  bytes = bytes + #json\n"
"  out[#out + 1] = e[i][1]\n"
"  out[#out + 1] = json\n"
"end\n"
"if #e == count then out[2] = 1 end\n"
"return out\n");


u_char  ngx_ws_relay_history_sha[41];


void
ngx_ws_relay_history_init(void)
{
    u_char      hash[20];
    ngx_sha1_t  sha1;

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, ngx_ws_relay_history_script.data,
                    ngx_ws_relay_history_script.len);
    ngx_sha1_final(hash, &sha1);

    *ngx_hex_dump(ngx_ws_relay_history_sha, hash, 20) = '\0';
}


/*
 * wc, a connection of its user now, goes live: at once when nothing is to
 * be replayed and this worker hears the user's channel already; otherwise
 * once the channel is heard and the replay after since is sent.  Without
 * Redis (the user's master, in a cluster) there is nothing to replay:
 * recovered is false.
 */

void
ngx_ws_relay_history_join(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_id_t *since, ngx_ws_relay_history_joined_pt handler,
    ngx_uint_t type)
{
    ngx_ws_relay_resume_t  *r;

    if (!ngx_ws_relay_bus_user_up(&wc->user->sn.str)
        || (since == NULL && wc->user->subscribed))
    {
        if (handler) {
            handler(wc, type, since ? 0 : -1);
        }

        return;
    }

    r = ngx_calloc(sizeof(ngx_ws_relay_resume_t), wc->connection->log);
    if (r == NULL) {
        if (handler) {
            handler(wc, type, since ? 0 : -1);
        }

        return;
    }

    r->wc = wc;
    r->handler = handler;
    r->type = type;
    ngx_queue_init(&r->held);

    if (since) {
        r->since = *since;
        r->replay = 1;

        if (handler) {
            /* the client has what came up to since, and asks for the rest */
            wc->last_id = *since;
        }
    }

    r->timer.handler = ngx_ws_relay_history_timeout;
    r->timer.data = r;
    r->timer.log = wc->connection->log;
    r->timer.cancelable = 1;

    wc->resume = r;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: connection %V joins \"%V\" after \"%*s\"",
                   &wc->id, &wc->user->sn.str, r->since.len, r->since.data);

    if (wc->user->subscribed) {
        ngx_ws_relay_history_read(r);
        return;
    }

    ngx_add_timer(&r->timer, ngx_ws_relay_worker.main_conf->redis.timeout);
}


/*
 * The worker hears the user's channel: those who waited for it go on.
 * When it heard it before and lost it (the subscriber link went), the live
 * connections missed what came meanwhile: they catch up from the newest
 * kept message the worker heard.
 */

void
ngx_ws_relay_history_subscribed(ngx_ws_relay_user_t *user)
{
    ngx_uint_t              missed;
    ngx_queue_t            *q;
    ngx_ws_relay_id_t       since;
    ngx_ws_relay_conn_t    *wc;
    ngx_ws_relay_resume_t  *r;

    user->subscribed = 1;
    missed = user->missed;
    user->missed = 0;

    for (q = ngx_queue_head(&user->connections);
         q != ngx_queue_sentinel(&user->connections);
         q = ngx_queue_next(q))
    {
        wc = ngx_queue_data(q, ngx_ws_relay_conn_t, user_queue);
        r = wc->resume;

        if (r && r->timer.timer_set) {
            ngx_del_timer(&r->timer);
            ngx_ws_relay_history_read(r);
            continue;
        }

        if (!missed || r || wc->closing || wc->conf->history.size == 0) {
            continue;
        }

        /*
         * After the newest message the connection was sent: only what it
         * would have got live.  One that had none yet: after the newest
         * the worker heard, when its user id may have its history.
         */

        if (wc->last_id.len) {
            since = wc->last_id;

        } else if (user->last_id.len && ngx_ws_relay_history_may_replay(wc)) {
            since = user->last_id;

        } else {
            continue;
        }

        ngx_log_error(NGX_LOG_INFO, wc->connection->log, 0,
                      "ws relay: catching up after \"%*s\"",
                      since.len, since.data);

        ngx_ws_relay_history_join(wc, &since, NULL, 0);
    }
}


/*
 * A user id that the server set may have its history replayed; one that
 * the client claimed only with resume_unverified=on.
 */

ngx_uint_t
ngx_ws_relay_history_may_replay(ngx_ws_relay_conn_t *wc)
{
    return wc->user_fixed || wc->conf->history.unverified;
}


/*
 * A kept message goes to the client unless it had it: ids grow, and a
 * replay may have sent what then comes live too (the replay and the
 * publication come on different links, in either order).
 */

ngx_uint_t
ngx_ws_relay_history_new(ngx_ws_relay_conn_t *wc, ngx_str_t *id)
{
    return ngx_ws_relay_history_advance(&wc->last_id, id);
}


/*
 * The worker heard a kept message of the user live, or learnt where the
 * user's history stood when it began to hear the channel: a catch-up
 * starts after it.
 */

void
ngx_ws_relay_history_heard(ngx_ws_relay_user_t *user, ngx_str_t *id)
{
    (void) ngx_ws_relay_history_advance(&user->last_id, id);
}


/* id is after last: it becomes last (when it fits) */

static ngx_uint_t
ngx_ws_relay_history_advance(ngx_ws_relay_id_t *last, ngx_str_t *id)
{
    ngx_str_t  s;

    s.data = last->data;
    s.len = last->len;

    if (s.len && ngx_ws_relay_wire_id_compare(id, &s) <= 0) {
        return 0;
    }

    if (id->len <= NGX_WS_RELAY_ID_LEN) {
        ngx_memcpy(last->data, id->data, id->len);
        last->len = id->len;
    }

    return 1;
}


static void
ngx_ws_relay_history_timeout(ngx_event_t *ev)
{
    ngx_ws_relay_resume_t  *r = ev->data;

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "ws relay: the channel of user \"%V\" was not subscribed "
                  "in time: nothing replayed", &r->wc->user->sn.str);

    ngx_ws_relay_history_live(r, 0);
}


/*
 * The next page of what the client missed.  Without a since, the worker
 * only learns where the user's history stands, the first time it hears
 * the user.
 */

static void
ngx_ws_relay_history_read(ngx_ws_relay_resume_t *r)
{
    u_char                       count[NGX_INT_T_LEN], bytes[NGX_INT_T_LEN];
    u_char                       ttl[NGX_INT_T_LEN];
    ngx_str_t                    args[5];
    ngx_ws_relay_conn_t         *wc;
    ngx_ws_relay_history_conf_t *h;

    wc = r->wc;

    if (!r->replay) {
        ngx_str_set(&args[0], "t");

        if (wc->user->last_id.len
            || ngx_ws_relay_bus_history(&wc->user->sn.str, args, 1,
                                        ngx_ws_relay_history_top, r)
               != NGX_OK)
        {
            ngx_ws_relay_history_live(r, -1);
            return;
        }

        r->reading = 1;
        return;
    }

    h = &wc->conf->history;

    ngx_str_set(&args[0], "r");
    args[1].data = ttl;
    args[1].len = ngx_sprintf(ttl, "%M", h->ttl) - ttl;
    args[2].data = r->since.data;
    args[2].len = r->since.len;
    args[3].data = count;
    args[3].len = ngx_sprintf(count, "%ui",
                              (ngx_uint_t) NGX_WS_RELAY_REPLAY_COUNT)
                  - count;
    args[4].data = bytes;
    args[4].len = ngx_sprintf(bytes, "%uz",
                              ngx_min(wc->conf->send_buffer / 2,
                                      NGX_WS_RELAY_REPLAY_BYTES))
                  - bytes;

    if (ngx_ws_relay_bus_history(&wc->user->sn.str, args, 5,
                                 ngx_ws_relay_history_page, r)
        != NGX_OK)
    {
        ngx_ws_relay_history_live(r, 0);
        return;
    }

    r->reading = 1;
}


static void
ngx_ws_relay_history_page(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply             *rr = reply;
    ngx_ws_relay_resume_t  *r = privdata;

    ngx_str_t             id, json;
    ngx_uint_t            i, more;
    redisReply          **e;
    ngx_ws_relay_conn_t  *wc;

    r->reading = 0;
    wc = r->wc;

    if (wc == NULL) {
        ngx_ws_relay_history_free(r);
        return;
    }

    if (ngx_ws_relay_bus_history_reply(ac, rr, "replay") != NGX_OK) {
        goto failed;
    }

    if (rr->type != REDIS_REPLY_ARRAY || rr->elements < 3
        || rr->elements % 2 != 1
        || rr->element[0]->type != REDIS_REPLY_INTEGER
        || rr->element[1]->type != REDIS_REPLY_INTEGER)
    {
        goto malformed;
    }

    e = rr->element;

    for (i = 2; i < rr->elements; i++) {
        if (e[i]->type != REDIS_REPLY_STRING) {
            goto malformed;
        }

        id.data = (u_char *) e[i]->str;
        id.len = e[i]->len;

        /* the ids go into the clients' JSON */

        if ((i == 2 || i % 2 == 1)
            && ngx_ws_relay_wire_id_valid(&id) != NGX_OK)
        {
            goto malformed;
        }
    }

    /* the newest id: the worker hears what comes after it live */

    id.data = (u_char *) e[2]->str;
    id.len = e[2]->len;
    ngx_ws_relay_history_heard(wc->user, &id);

    if (!r->replied) {
        r->replied = 1;

        if (r->handler) {
            r->handler(wc, r->type, e[0]->integer ? 1 : 0);
        }
    }

    for (i = 3; i < rr->elements; i += 2) {
        id.data = (u_char *) e[i]->str;
        id.len = e[i]->len;
        json.data = (u_char *) e[i + 1]->str;
        json.len = e[i + 1]->len;

        ngx_ws_relay_history_send(wc, &json, &id);
        ngx_ws_relay_stat_add(replayed, 1);

        ngx_memcpy(r->since.data, id.data, id.len);
        r->since.len = id.len;
    }

    more = e[1]->integer && rr->elements > 3;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, wc->connection->log, 0,
                   "ws relay: replayed %ui messages to %V, %s",
                   (rr->elements - 3) / 2, &wc->id,
                   more ? "more to come" : "live now");

    if (more && !wc->closing) {
        ngx_ws_relay_history_read(r);
        return;
    }

    ngx_ws_relay_history_live(r, -1);
    return;

malformed:

    ngx_log_error(NGX_LOG_ERR, wc->connection->log, 0,
                  "ws relay: redis replay answered with an unexpected reply");

failed:

    ngx_ws_relay_history_live(r, 0);
}


static void
ngx_ws_relay_history_top(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply             *rr = reply;
    ngx_ws_relay_resume_t  *r = privdata;

    ngx_str_t  id;

    r->reading = 0;

    if (r->wc == NULL) {
        ngx_ws_relay_history_free(r);
        return;
    }

    if (ngx_ws_relay_bus_history_reply(ac, rr, "history") == NGX_OK
        && rr->type == REDIS_REPLY_STRING)
    {
        id.data = (u_char *) rr->str;
        id.len = rr->len;

        if (ngx_ws_relay_wire_id_valid(&id) == NGX_OK) {
            ngx_ws_relay_history_heard(r->wc->user, &id);
        }
    }

    ngx_ws_relay_history_live(r, -1);
}


/* a kept message: its JSON, with its id */

static void
ngx_ws_relay_history_send(ngx_ws_relay_conn_t *wc, ngx_str_t *json,
    ngx_str_t *id)
{
    u_char  *p, *start;

    if (!ngx_ws_relay_history_new(wc, id)) {
        return;
    }

    if (json->len < 2 || json->data[json->len - 1] != '}') {
        ngx_log_error(NGX_LOG_ERR, wc->connection->log, 0,
                      "ws relay: a kept message that is not a JSON object "
                      "skipped: \"%V\"", id);
        return;
    }

    start = ngx_alloc(ngx_ws_relay_wire_id_text_len(json, id),
                      wc->connection->log);
    if (start == NULL) {
        return;
    }

    p = ngx_ws_relay_wire_id_text(start, json, id);

    (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT, start,
                                  p - start);
    ngx_free(start);
}


/*
 * The replay is over (or failed: recovered 0): the reply if it is still
 * due, then what came live meanwhile and was not replayed.
 */

static void
ngx_ws_relay_history_live(ngx_ws_relay_resume_t *r, ngx_int_t recovered)
{
    ngx_queue_t          *q;
    ngx_ws_relay_conn_t  *wc;
    ngx_ws_relay_held_t  *m;

    wc = r->wc;

    if (!r->replied) {
        r->replied = 1;

        if (r->handler) {
            r->handler(wc, r->type, r->replay ? ngx_max(recovered, 0) : -1);
        }
    }

    for (q = ngx_queue_head(&r->held);
         q != ngx_queue_sentinel(&r->held);
         q = ngx_queue_next(q))
    {
        m = ngx_queue_data(q, ngx_ws_relay_held_t, queue);

        if (m->id.len && !ngx_ws_relay_history_new(wc, &m->id)) {
            /* the replay had it */
            continue;
        }

        (void) ngx_ws_relay_conn_send(wc, NGX_WS_RELAY_OP_TEXT,
                                      m->text.data, m->text.len);
    }

    wc->resume = NULL;
    ngx_ws_relay_history_free(r);

    ngx_ws_relay_conn_read_on(wc);
}


/*
 * A live message for a connection that is not live yet: kept for it.
 * More than its send buffer meanwhile closes it (1008), as a full send
 * queue would.
 */

ngx_int_t
ngx_ws_relay_history_hold(ngx_ws_relay_conn_t *wc, ngx_str_t *text,
    ngx_str_t *id)
{
    ngx_ws_relay_held_t    *m;
    ngx_ws_relay_resume_t  *r;

    r = wc->resume;

    if (wc->closing) {
        return NGX_DECLINED;
    }

    if (r->held_bytes + text->len > wc->conf->send_buffer) {
        ngx_ws_relay_conn_fail(wc, NGX_WS_RELAY_CLOSE_POLICY,
                               "too many messages while resuming");
        return NGX_DECLINED;
    }

    m = ngx_alloc(sizeof(ngx_ws_relay_held_t) + text->len
                  + (id ? id->len : 0), wc->connection->log);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->text.data = (u_char *) (m + 1);
    m->text.len = text->len;
    ngx_memcpy(m->text.data, text->data, text->len);

    m->id.data = m->text.data + text->len;
    m->id.len = id ? id->len : 0;

    if (id) {
        ngx_memcpy(m->id.data, id->data, id->len);
    }

    ngx_queue_insert_tail(&r->held, &m->queue);
    r->held_bytes += text->len;

    return NGX_OK;
}


/*
 * The connection goes or leaves its user: no reply, no replay; ids are
 * the user's, another user's start anew.
 */

void
ngx_ws_relay_history_abandon(ngx_ws_relay_conn_t *wc)
{
    ngx_ws_relay_resume_t  *r;

    wc->last_id.len = 0;

    r = wc->resume;

    if (r == NULL) {
        return;
    }

    wc->resume = NULL;

    if (r->reading) {
        /* the script's reply frees it */
        r->wc = NULL;
        return;
    }

    ngx_ws_relay_history_free(r);
}


static void
ngx_ws_relay_history_free(ngx_ws_relay_resume_t *r)
{
    ngx_queue_t          *q;
    ngx_ws_relay_held_t  *m;

    if (r->timer.timer_set) {
        ngx_del_timer(&r->timer);
    }

    while (!ngx_queue_empty(&r->held)) {
        q = ngx_queue_head(&r->held);
        ngx_queue_remove(q);

        m = ngx_queue_data(q, ngx_ws_relay_held_t, queue);
        ngx_free(m);
    }

    ngx_free(r);
}


/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * What the router and Redis targets need of a running nginx worker,
 * without one: the globals the module reads (cycle, log, clock, worker,
 * statistics slot), the event timer tree with a way to let time pass,
 * ngx_alloc() and the blocks of nginx's pools that can be made to fail
 * (the cycle's pool is new for each input), a
 * log that formats every line it is given (so that every format string
 * meets the fuzzed data) and drops it, a counting allocator for jansson,
 * and fake connections, opened and closed by the router, for the
 * functions of ngx_ws_relay_conn.c that need a socket, among them the
 * read event that ngx_ws_relay_conn_read_on() posts: what a client sends
 * while its connection joins its user waits, unread, until then
 * (ngx_ws_relay_conn_process()).
 */


#ifndef _FUZZ_NGX_H_INCLUDED_
#define _FUZZ_NGX_H_INCLUDED_


#include "fuzz.h"
#include "ngx_ws_relay.h"
#include "ngx_ws_relay_conn.h"
#include "ngx_ws_relay_shm.h"
#include <jansson.h>


typedef struct fuzz_conn_s  fuzz_conn_t;
typedef struct fuzz_wait_s  fuzz_wait_t;


/* a message that waits, unread, while its connection joins its user */
struct fuzz_wait_s {
    fuzz_wait_t                  *next;
    size_t                        len;
    u_char                        data[1];
};


/* a connection of ngx_ws_relay_conn.c, as far as the router sees one */
struct fuzz_conn_s {
    ngx_ws_relay_conn_t           wc;
    ngx_connection_t              connection;
    /* its location's, unless fuzz_conn_conf names one */
    ngx_ws_relay_loc_conf_t       conf;
    u_char                        id[32];
    ngx_uint_t                    index;
    /* sends fail, as when the send queue is full or the peer left */
    ngx_uint_t                    refuse;
    ngx_uint_t                    open;
    /* ngx_ws_relay_conn_close() or _fail() was called: no more reading */
    ngx_uint_t                    close_code;
    /* what the client sent while the connection joined its user, in order */
    fuzz_wait_t                  *waiting;
    fuzz_wait_t                 **waiting_tail;
    /* its read event is posted (ngx_ws_relay_conn_read_on()) */
    ngx_uint_t                    posted;
    fuzz_conn_t                  *posted_next;
};


/*
 * Bugs of the module that the targets found and that are not fixed yet:
 * the targets steer clear of them unless FUZZ_BUGS names them ("all", or
 * a comma-separated list of the names below), so that a run goes on past
 * them; the inputs in known/ reproduce them (known/README).  None at
 * present: a bug's switch is FUZZ_BUG_<NAME>, a bit of fuzz_bugs.
 */

extern ngx_uint_t                 fuzz_bugs;

extern ngx_log_t                  fuzz_log;
extern ngx_cycle_t                fuzz_cycle;
extern ngx_ws_relay_main_conf_t   fuzz_main_conf;
extern ngx_ws_relay_slot_t        fuzz_slot;
/* the location of the connections opened from now; NULL: their own */
extern ngx_ws_relay_loc_conf_t   *fuzz_conn_conf;


void fuzz_ngx_init(void);
void fuzz_ngx_reset(void);

/* the n-th ngx_alloc() or jansson allocation from now fails; 0: none */
void fuzz_fail_alloc(ngx_uint_t n);
ngx_uint_t fuzz_alloc_failed(void);
void fuzz_fail_pause(ngx_uint_t pause);

/* jansson allocations not freed yet */
ngx_int_t fuzz_json_live(void);

/* the clock moves on by ms, and expired timers fire in nginx's order */
void fuzz_time_pass(ngx_msec_t ms);
ngx_event_t *fuzz_timer_firing(void);
ngx_uint_t fuzz_timers(void);
void fuzz_del_timer(ngx_event_t *ev);

ngx_int_t fuzz_conn_open(fuzz_conn_t *fc, ngx_uint_t index, ngx_uint_t serial,
    ngx_str_t *user_id);
void fuzz_conn_close(fuzz_conn_t *fc);

/*
 * A message of the client: 1, it waits (the connection joins its user, or
 * older ones wait still), kept in a copy; 0, it is read now.
 */
ngx_uint_t fuzz_conn_waits(fuzz_conn_t *fc, const u_char *data, size_t len);
/* the connections whose read event was posted, in order; NULL: no more */
fuzz_conn_t *fuzz_conn_posted(void);
/*
 * The next message that waited, read now (the caller frees it), unless
 * the connection joins its user again or is closing (then nothing more is
 * read of it).  NULL: none.
 */
fuzz_wait_t *fuzz_conn_unwait(fuzz_conn_t *fc);

/*
 * each target implements these: what the stubs of ngx_ws_relay_conn.c saw
 * (nothing of a connection that is closing: its frames are not sent)
 */
ngx_int_t fuzz_on_reply(fuzz_conn_t *fc, u_char *data, size_t len);
ngx_int_t fuzz_on_delivery(fuzz_conn_t *fc, u_char *data, size_t len);

void fuzz_trace(const char *fmt, ...);


#endif /* _FUZZ_NGX_H_INCLUDED_ */

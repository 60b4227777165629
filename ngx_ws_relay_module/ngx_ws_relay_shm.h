
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_SHM_H_INCLUDED_
#define _NGX_WS_RELAY_SHM_H_INCLUDED_


#include "ngx_ws_relay.h"


#define NGX_WS_RELAY_SLOTS        128
/* close codes 1000..1015, then everything else */
#define NGX_WS_RELAY_CLOSE_CODES  17
#define NGX_WS_RELAY_ERROR_LEN    128


/*
 * One worker's counters.  Only that worker writes them, so no locks: a
 * reader may see one counter a step behind another, never a torn value.
 */

typedef struct {
    ngx_atomic_t     pid;
    ngx_atomic_t     started;
    ngx_atomic_t     connections;
    ngx_atomic_t     users;
    ngx_atomic_t     accepted;
    ngx_atomic_t     rejected;
    ngx_atomic_t     messages_in;
    ngx_atomic_t     messages_out;
    ngx_atomic_t     bytes_in;
    ngx_atomic_t     bytes_out;
    ngx_atomic_t     deliveries;
    ngx_atomic_t     delivery_timeouts;
    ngx_atomic_t     history_stored;
    ngx_atomic_t     history_failed;
    ngx_atomic_t     resumes;
    ngx_atomic_t     resumes_unrecovered;
    ngx_atomic_t     replayed;
    ngx_atomic_t     closes[NGX_WS_RELAY_CLOSE_CODES];
    ngx_atomic_t     redis_state;
    ngx_atomic_t     redis_reconnects;
    ngx_atomic_t     redis_failovers;
    ngx_atomic_t     redis_topology_refreshes;
    ngx_atomic_t     redis_errors;
    ngx_atomic_t     redis_rtt_us;
    u_char           redis_error[NGX_WS_RELAY_ERROR_LEN];
} ngx_ws_relay_slot_t;


typedef struct {
    ngx_atomic_t          started;
    ngx_ws_relay_slot_t   slots[NGX_WS_RELAY_SLOTS];
} ngx_ws_relay_shm_t;


extern ngx_ws_relay_slot_t  *ngx_ws_relay_slot;

#define ngx_ws_relay_stat_add(field, n)  ngx_ws_relay_slot->field += (n)
#define ngx_ws_relay_stat_set(field, n)  ngx_ws_relay_slot->field = (n)


/* the zone of this configuration: reached through the cycle's conf */
#define ngx_ws_relay_shm(wmcf)                                                \
    ((wmcf)->shm_zone ? (ngx_ws_relay_shm_t *) (wmcf)->shm_zone->data : NULL)


ngx_int_t ngx_ws_relay_shm_add(ngx_conf_t *cf,
    ngx_ws_relay_main_conf_t *wmcf);
ngx_int_t ngx_ws_relay_shm_init_worker(ngx_ws_relay_main_conf_t *wmcf,
    ngx_log_t *log);
void ngx_ws_relay_shm_exit_worker(void);
ngx_uint_t ngx_ws_relay_shm_slot_live(ngx_ws_relay_slot_t *slot);
void ngx_ws_relay_shm_count_close(ngx_uint_t code);


#endif /* _NGX_WS_RELAY_SHM_H_INCLUDED_ */

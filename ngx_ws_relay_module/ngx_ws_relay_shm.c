
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_shm.h"


static ngx_int_t ngx_ws_relay_shm_init_zone(ngx_shm_zone_t *zone,
    void *data);


static ngx_str_t             ngx_ws_relay_shm_name = ngx_string("ws_relay");

/* counters go here until the worker has its slot, and without a zone */
static ngx_ws_relay_slot_t   ngx_ws_relay_local_slot;

ngx_ws_relay_slot_t         *ngx_ws_relay_slot = &ngx_ws_relay_local_slot;


/*
 * The zone belongs to the configuration, as limit_req's does: a reload
 * that fails after this call leaves the running cycle's zone alone.
 */

ngx_int_t
ngx_ws_relay_shm_add(ngx_conf_t *cf, ngx_ws_relay_main_conf_t *wmcf)
{
    size_t           size;
    ngx_shm_zone_t  *shm_zone;

    size = ngx_align(sizeof(ngx_ws_relay_shm_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    shm_zone = ngx_shared_memory_add(cf, &ngx_ws_relay_shm_name, size,
                                     &ngx_ws_relay_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_ws_relay_shm_init_zone;
    wmcf->shm_zone = shm_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_ws_relay_shm_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t     *shpool;
    ngx_ws_relay_shm_t  *shm;

    if (data) {
        /* reload: the workers of both generations share the slots */
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    shm = ngx_slab_calloc(shpool, sizeof(ngx_ws_relay_shm_t));
    if (shm == NULL) {
        return NGX_ERROR;
    }

    shm->started = ngx_time();
    zone->data = shm;

    return NGX_OK;
}


/* a free slot, or the slot of a worker that died without freeing it */

ngx_int_t
ngx_ws_relay_shm_init_worker(ngx_ws_relay_main_conf_t *wmcf, ngx_log_t *log)
{
    ngx_uint_t            i;
    ngx_atomic_uint_t     pid;
    ngx_ws_relay_shm_t   *shm;
    ngx_ws_relay_slot_t  *slot;

    shm = ngx_ws_relay_shm(wmcf);
    if (shm == NULL) {
        return NGX_OK;
    }

    for (i = 0; i < NGX_WS_RELAY_SLOTS; i++) {
        slot = &shm->slots[i];
        pid = slot->pid;

        if (pid != 0 && ngx_ws_relay_shm_slot_live(slot)) {
            continue;
        }

        if (!ngx_atomic_cmp_set(&slot->pid, pid, (ngx_atomic_uint_t) ngx_pid))
        {
            continue;
        }

        ngx_memzero((u_char *) slot + sizeof(ngx_atomic_t),
                    sizeof(ngx_ws_relay_slot_t) - sizeof(ngx_atomic_t));

        slot->started = ngx_time();
        ngx_ws_relay_slot = slot;

        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "ws relay: no free statistics slot: this worker is "
                  "missing from the API figures");

    return NGX_OK;
}


void
ngx_ws_relay_shm_exit_worker(void)
{
    if (ngx_ws_relay_slot != &ngx_ws_relay_local_slot) {
        ngx_ws_relay_slot->pid = 0;
        ngx_ws_relay_slot = &ngx_ws_relay_local_slot;
    }
}


ngx_uint_t
ngx_ws_relay_shm_slot_live(ngx_ws_relay_slot_t *slot)
{
    ngx_pid_t  pid;

    pid = (ngx_pid_t) slot->pid;

    if (pid == 0) {
        return 0;
    }

    return kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH;
}


void
ngx_ws_relay_shm_count_close(ngx_uint_t code)
{
    ngx_uint_t  i;

    i = (code >= 1000 && code < 1000 + NGX_WS_RELAY_CLOSE_CODES - 1)
        ? code - 1000 : NGX_WS_RELAY_CLOSE_CODES - 1;

    ngx_ws_relay_slot->closes[i]++;
}

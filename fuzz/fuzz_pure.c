
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * What nginx's ngx_string.c needs of the rest of nginx, for the targets
 * of pure functions (json, wire) and t/unit's wire_test: the cycle, whose
 * log the JSON scratch buffer names, and the allocators, which never fail
 * here.
 */


#include <ngx_config.h>
#include <ngx_core.h>


static ngx_log_t     fuzz_pure_log;
static ngx_cycle_t   fuzz_pure_cycle = { .log = &fuzz_pure_log };

volatile ngx_cycle_t  *ngx_cycle = &fuzz_pure_cycle;


void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    void  *p;

    (void) log;

    p = malloc(size);

    if (p == NULL) {
        abort();
    }

    return p;
}


/* ngx_string.c's ngx_pstrdup(): nothing under test calls it */

void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    (void) pool;
    (void) size;

    abort();
}

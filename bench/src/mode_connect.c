/*
 * wsload's connect mode: N connections, each registered as its own user,
 * held idle (the engine answers the server's pings) and closed cleanly.
 * The measured part is the setup: wsload.c and report.c see to that.
 */

#include "engine.h"


static long
connect_sockets(void)
{
    return cfg.connections;
}


static void
connect_thread_init(wl_thread_t *th, long n)
{
    size_t  i;

    thread_alloc(th, (size_t) n, 0);

    for (i = 0; i < th->nconns; i++) {
        conn_init(&th->conns[i], th, ROLE_IDLE, "c", i);
    }
}


const wl_mode_ops_t  wl_connect_mode = {
    .units = &cfg.connections,
    .sockets = connect_sockets,
    .thread_init = connect_thread_init,
};

/*
 * wsload: WebSocket load generator for the relay protocol (PROTOCOL.md).
 *
 * This file: the command line, processes, the phases of a run, main.
 * The engine (connections, event loop, threads) is engine.c, each mode
 * adds its part through a wl_mode_ops_t (mode_*.c), report.c prints the
 * results.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bomb.h"
#include "engine.h"

#define WL_NITEMS(a)  (sizeof(a) / sizeof((a)[0]))

wl_config_t                   cfg;
const wl_mode_ops_t          *g_mode;
static volatile sig_atomic_t  g_interrupted;


/* ---- command line ---- */

/* The modes as bits of wl_option_t.modes. */
#define M_CONNECT  (1u << MODE_CONNECT)
#define M_CHAT     (1u << MODE_CHAT)
#define M_API      (1u << MODE_API)
#define M_BUSY     (1u << MODE_BUSY)
#define M_ALL      (M_CONNECT | M_CHAT | M_API | M_BUSY)

typedef enum {
    OPT_FLAG = 0,         /* sets an int to 1 */
    OPT_TEXT,             /* keeps the argument as is */
    OPT_INT,              /* a number of at least min */
    OPT_LONG,
    OPT_DOUBLE,
    OPT_PLACEMENT,        /* one of wl_placement_names */
    OPT_HELP
} wl_opt_kind_t;

/*
 * An option.  modes are the modes it is meant for, which place it in the
 * help (under "common" when it is all of them); every mode takes every
 * option and ignores those it has no use for.  help is one or more lines
 * (a first empty one puts the text under the option), NULL to leave the
 * option out of the help.
 */
typedef struct {
    const char     *name;
    int             letter;       /* short option, or 0 */
    const char     *arg;          /* the argument in the help; NULL: none */
    unsigned        modes;
    wl_opt_kind_t   kind;
    void           *to;           /* where the value goes */
    double          min;          /* numbers: the lowest allowed */
    const char     *help;
} wl_option_t;

static const char  *url_arg = "ws://127.0.0.1:8080/";
static const char  *peer_arg;
static const char  *api_arg;
static const char  *prefix_arg;

static const wl_option_t  options[] = {
    { "url", 'u', "URL", M_ALL, OPT_TEXT, &url_arg, 0,
      "WebSocket URL (default ws://127.0.0.1:8080/)" },
    { "threads", 't', "N", M_ALL, OPT_INT, &cfg.threads, 1,
      "threads (default: online CPUs)" },
    { "procs", 'p', "N", M_ALL, OPT_INT, &cfg.procs, 1,
      "processes, each with its own open-files limit\n"
      "and its share of the load (default 1)" },
    { "concurrency", 'c', "N", M_ALL, OPT_LONG, &cfg.concurrency, 1,
      "connection attempts in progress at once (256)" },
    { "timeout", 0, "S", M_ALL, OPT_DOUBLE, &cfg.timeout, 0.001,
      "handshake+register deadline per connection (10)" },
    { "src-ips", 0, "K", M_ALL, OPT_INT, &cfg.src_ips, 0,
      "spread source addresses over 127.0.0.1..K when\n"
      "the target is loopback (default 16; 0: no bind)" },
    { "close-wait", 0, "S", M_ALL, OPT_DOUBLE, &cfg.close_wait, 0,
      "wait for close replies at the end (2)" },
    { "json", 0, "FILE", M_ALL, OPT_TEXT, &cfg.json, 0,
      "write a machine-readable result" },
    { "deflate", 0, NULL, M_ALL, OPT_FLAG, &cfg.deflate, 0,
      "offer permessage-deflate (no context takeover\n"
      "either way): compress what we send, inflate\n"
      "what comes compressed" },
    { "ready-file", 0, "FILE", M_ALL, OPT_TEXT, &cfg.ready_file, 0,
      "create FILE once every connection is set up" },
    { "id-prefix", 0, "S", M_ALL, OPT_TEXT, &prefix_arg, 0,
      "user id prefix (default: unique per run)" },
    { "quiet", 'q', NULL, M_ALL, OPT_FLAG, &cfg.quiet, 0,
      "no warnings" },
    { "help", 'h', NULL, M_ALL, OPT_HELP, NULL, 0, NULL },

    { "connections", 'n', "N", M_CONNECT, OPT_LONG, &cfg.connections, 1,
      "(default 1000)" },
    { "hold", 0, "S", M_CONNECT, OPT_DOUBLE, &cfg.hold, 0,
      "seconds to hold them idle, answering pings (0)" },

    { "pairs", 'P', "N", M_CHAT | M_BUSY, OPT_LONG, &cfg.pairs, 1,
      "(default 50)" },
    { "window", 'w', "W", M_CHAT, OPT_LONG, &cfg.window, 1,
      "closed loop: messages in flight per pair (16)" },
    { "rate", 'r', "R", M_CHAT | M_API | M_BUSY, OPT_DOUBLE, &cfg.rate, 0,
      "open loop instead: R msgs/s in total; latency\n"
      "counts from the scheduled send time" },
    { "duration", 'd', "S", M_CHAT | M_API | M_BUSY, OPT_DOUBLE,
      &cfg.duration, 0.001, "measured seconds (default 10)" },
    { "warmup", 0, "S", M_CHAT | M_API | M_BUSY, OPT_DOUBLE, &cfg.warmup, 0,
      "unmeasured seconds first (default 1)" },
    { "drain", 0, "S", M_CHAT | M_API | M_BUSY, OPT_DOUBLE, &cfg.drain, 0,
      "wait for messages in flight at the end (2)" },
    { "size", 0, "B", M_CHAT, OPT_LONG, &cfg.size, 0,
      "pad each chat text to B bytes (JSON-like text)" },
    { "placement", 0, "any|same|cross", M_CHAT, OPT_PLACEMENT,
      &cfg.placement, 0,
      "\n"
      "reconnect receivers until the pair's two\n"
      "welcome.processId are equal / different" },
    { "placement-tries", 0, "N", M_CHAT | M_BUSY, OPT_LONG,
      &cfg.placement_tries, 0, "reconnects allowed per pair (50)" },
    { "peer-url", 0, "URL", M_CHAT, OPT_TEXT, &peer_arg, 0,
      "receivers connect here (another instance)" },
    { "events", 0, "FILE", M_CHAT, OPT_TEXT, &cfg.events, 0,
      "write a line per chat sent, received and\n"
      "answered, with wall-clock times (one process)" },

    { "reconnect", 0, NULL, M_CONNECT | M_CHAT, OPT_FLAG, &cfg.reconnect, 0,
      "when the server drops a registered connection\n"
      "while the load runs (close 1001 on reload, EOF),\n"
      "connect again and register as the same user; a\n"
      "chat receiver resumes with \"since\": the last\n"
      "message id it saw (\"0\" when it saw none)" },
    { "backoff", 0, "S", M_CONNECT | M_CHAT, OPT_DOUBLE, &cfg.backoff, 0,
      "each attempt waits a random 0..bound seconds;\n"
      "the bound starts at S (0.1) and doubles after\n"
      "each failed attempt" },
    { "backoff-max", 0, "S", M_CONNECT | M_CHAT, OPT_DOUBLE,
      &cfg.backoff_max, 0, "the bound's ceiling (5)" },

    { "users", 0, "N", M_API, OPT_LONG, &cfg.users, 1,
      "connected users (default 100)" },
    { "api-url", 0, "URL", M_API, OPT_TEXT, &api_arg, 0,
      "http://host:port/api/send-to-user (default:\n"
      "the --url host and port)" },
    { "api-conns", 0, "N", M_API, OPT_LONG, &cfg.api_conns, 1,
      "keep-alive HTTP connections (default 8)" },
    { "api-pipeline", 0, "N", M_API, OPT_LONG, &cfg.api_pipeline, 1,
      "requests in flight per HTTP connection (1)" },

    { "bomb-size", 0, "B", M_BUSY, OPT_LONG, &cfg.bomb_size, BOMB_MIN_SIZE,
      "bytes each bomb inflates to (default 1047552:\n"
      "1 KiB under ws_relay_max_message_size 1m)" },
    { "bombs", 0, "LIST", M_BUSY, OPT_TEXT, &cfg.bombs, 0,
      "the kinds sent in turn (default chat,deep,unclosed):\n"
      "chat {\"type\":\"chat\",\"text\":[0,0,...,0]}, deep [[[[...,\n"
      "unclosed {\"type\":\"chat\",\"text\":[0,0,... never closed" }
};

/*
 * The help's sections: a heading, then lines before and after the
 * options listed under it.  api mode notes there what it makes of the
 * options it shares with chat mode.
 */
static const struct {
    unsigned     modes;
    const char  *heading;
    const char  *before;
    const char  *after;
} sections[] = {
    { M_ALL, "common:", "", "" },
    { M_CONNECT, "connect mode: open N registered connections, hold them, "
                 "close cleanly", "", "" },
    { M_CHAT, "chat mode: sender->receiver pairs", "", "" },
    { M_CONNECT | M_CHAT, "reconnect and resume (connect and chat modes)", "",
      "" },
    { M_API, "api mode: POST send-to-user at a fixed rate to connected users",
      "  -r, --rate R           requests/s in total (default 1000)\n",
      "  -d, --duration S, --warmup S, --drain S as in chat mode\n" },
    { M_BUSY, "busy mode: a bomber sends compressed bombs as fast as its "
              "socket takes them;\na victim on its worker pings, "
              "cross-worker pairs chat (two threads,\n"
              "permessage-deflate always offered)",
      "  -P, --pairs N          cross-worker chat pairs (default 4)\n"
      "  -r, --rate R           pings and chats per second in total, "
      "R / (1 + N) each\n"
      "                         (default 50 each: a ping every 20 ms)\n"
      "  -d, --duration S, --warmup S, --drain S as in chat mode\n"
      "      --placement-tries N  victim reconnects allowed to reach the "
      "bomber's\n                         worker (50)\n",
      "" }
};

static const wl_mode_ops_t  *const mode_ops[MODE_MAX] = {
    &wl_connect_mode, &wl_chat_mode, &wl_api_mode, &wl_busy_mode
};


/*
 * The section that lists an option: the one for exactly its modes, else
 * its first mode's.
 */
static unsigned
help_section(unsigned modes)
{
    size_t  s;

    for (s = 0; s < WL_NITEMS(sections); s++) {
        if (sections[s].modes == modes) {
            return modes;
        }
    }

    return modes & -modes;
}


/* One option's lines: its help at column 25, or two blanks after it. */
static void
usage_option(FILE *f, const wl_option_t *o)
{
    const char  *h = o->help, *eol;
    int          n;

    if (o->letter) {
        n = fprintf(f, "  -%c, --%s", o->letter, o->name);

    } else {
        n = fprintf(f, "      --%s", o->name);
    }

    if (o->arg) {
        n += fprintf(f, " %s", o->arg);
    }

    for ( ;; ) {
        eol = strchrnul(h, '\n');
        if (eol > h) {
            fprintf(f, "%*s%.*s", n < 23 ? 25 - n : 2, "", (int) (eol - h),
                    h);
        }
        fputc('\n', f);

        if (*eol == '\0') {
            return;
        }
        h = eol + 1;
        n = 0;
    }
}


static void
usage(FILE *f)
{
    const wl_option_t  *o;
    size_t              s;

    fprintf(f, "usage: wsload connect|chat|api|busy [options]\n"
            "\n"
            "Load generator for the WebSocket relay protocol (ws:// only).\n");

    for (s = 0; s < WL_NITEMS(sections); s++) {
        fprintf(f, "\n%s\n%s", sections[s].heading, sections[s].before);

        for (o = options; o < options + WL_NITEMS(options); o++) {
            if (o->help != NULL
                && help_section(o->modes) == sections[s].modes)
            {
                usage_option(f, o);
            }
        }

        fputs(sections[s].after, f);
    }
}


static void
parse_url(wl_url_t *u, const char *s, const char *scheme, int def_port)
{
    struct addrinfo   hints, *res;
    const char       *p, *slash, *colon;
    size_t            hlen;
    int               rc;

    memset(u, 0, sizeof(*u));

    if (strncmp(s, scheme, strlen(scheme)) != 0) {
        die("URL must start with %s: %s", scheme, s);
    }

    p = s + strlen(scheme);
    slash = strchr(p, '/');
    if (slash == NULL) {
        slash = p + strlen(p);
    }

    colon = memchr(p, ':', (size_t) (slash - p));
    hlen = (size_t) ((colon ? colon : slash) - p);
    if (hlen == 0 || hlen >= sizeof(u->host)) {
        die("bad host in %s", s);
    }

    memcpy(u->host, p, hlen);
    u->port = colon ? atoi(colon + 1) : def_port;
    if (u->port <= 0 || u->port > 65535) {
        die("bad port in %s", s);
    }

    snprintf(u->path, sizeof(u->path), "%s", *slash ? slash : "/");
    snprintf(u->hostport, sizeof(u->hostport), "%s:%d", u->host, u->port);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(u->host, NULL, &hints, &res);
    if (rc != 0) {
        die("%s: %s", u->host, gai_strerror(rc));
    }

    memcpy(&u->addr, res->ai_addr, sizeof(u->addr));
    u->addr.sin_port = htons((uint16_t) u->port);
    freeaddrinfo(res);

    u->loopback = (ntohl(u->addr.sin_addr.s_addr) >> 24) == 127;
}


static double
arg_num(const wl_option_t *o, const char *v)
{
    char    *end;
    double   d = strtod(v, &end);

    if (*v == '\0' || *end != '\0' || d < o->min) {
        if (o->letter) {
            die("bad value for -%c: %s", o->letter, v);
        }
        die("bad value for --%s: %s", o->name, v);
    }
    return d;
}


/* The index of s in names, or -1. */
static int
name_index(const char *const *names, int n, const char *s)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return i;
        }
    }
    return -1;
}


static void
option_set(const wl_option_t *o, const char *v)
{
    int  i;

    switch (o->kind) {

    case OPT_FLAG:
        *(int *) o->to = 1;
        break;

    case OPT_TEXT:
        *(const char **) o->to = v;
        break;

    case OPT_INT:
        *(int *) o->to = (int) arg_num(o, v);
        break;

    case OPT_LONG:
        *(long *) o->to = (long) arg_num(o, v);
        break;

    case OPT_DOUBLE:
        *(double *) o->to = arg_num(o, v);
        break;

    case OPT_PLACEMENT:
        i = name_index(wl_placement_names, PLACE_MAX, v);
        if (i < 0) {
            die("--%s %s", o->name, o->arg);
        }
        *(wl_placement_t *) o->to = (wl_placement_t) i;
        break;

    case OPT_HELP:
        usage(stdout);
        exit(0);
    }
}


/* What getopt_long returns for options[i]. */
static int
option_val(size_t i)
{
    return options[i].letter ? options[i].letter : 256 + (int) i;
}


static void
parse_args(int argc, char **argv)
{
    struct option  longs[WL_NITEMS(options) + 1];
    char           shorts[2 * WL_NITEMS(options) + 1], buf[600];
    size_t         i, ns = 0;
    long           ncpu;
    int            m, o;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1],
                                                            "--help")))
        {
            usage(stdout);
            exit(0);
        }
        usage(stderr);
        exit(2);
    }

    m = name_index(wl_mode_names, MODE_MAX, argv[1]);
    if (m < 0) {
        die("unknown mode %s (connect, chat, api, busy)", argv[1]);
    }
    cfg.mode = (wl_mode_t) m;
    g_mode = mode_ops[m];

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.threads = ncpu > 0 ? (int) ncpu : 1;
    cfg.procs = 1;
    cfg.connections = 1000;
    cfg.concurrency = 256;
    cfg.pairs = -1;             /* not given: 4 in busy mode, else 50 */
    cfg.window = 16;
    cfg.rate = -1;              /* not given: 1000 in api mode, else 0 */
    cfg.duration = 10;
    cfg.warmup = 1;
    cfg.drain = 2;
    cfg.timeout = 10;
    cfg.close_wait = 2;
    cfg.placement_tries = 50;
    cfg.users = 100;
    cfg.bomb_size = 1047552;
    cfg.bombs = "chat,deep,unclosed";
    cfg.api_conns = 8;
    cfg.api_pipeline = 1;
    cfg.src_ips = 16;
    cfg.backoff = 0.1;
    cfg.backoff_max = 5;
    snprintf(cfg.prefix, sizeof(cfg.prefix), "wl%lx%llx",
             (unsigned long) getpid(),
             (unsigned long long) (now_ns() / 1000) & 0xffffff);

    for (i = 0; i < WL_NITEMS(options); i++) {
        longs[i] = (struct option) {
            options[i].name,
            options[i].arg ? required_argument : no_argument,
            NULL, option_val(i)
        };

        if (options[i].letter) {
            shorts[ns++] = (char) options[i].letter;
            if (options[i].arg) {
                shorts[ns++] = ':';
            }
        }
    }
    longs[i] = (struct option) { NULL, 0, NULL, 0 };
    shorts[ns] = '\0';

    optind = 2;
    while ((o = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        for (i = 0; i < WL_NITEMS(options); i++) {
            if (option_val(i) == o) {
                break;
            }
        }

        if (i == WL_NITEMS(options)) {
            usage(stderr);
            exit(2);
        }

        option_set(&options[i], optarg);
    }

    if (optind != argc) {
        die("unexpected argument %s", argv[optind]);
    }

    if (cfg.src_ips > 255) {
        die("--src-ips at most 255");
    }

    if (cfg.size > 1024 * 1024) {
        die("--size at most 1 MiB");
    }

    if (prefix_arg) {
        snprintf(cfg.prefix, sizeof(cfg.prefix), "%s", prefix_arg);
    }

    parse_url(&cfg.url, url_arg, "ws://", 80);
    parse_url(&cfg.peer_url, peer_arg ? peer_arg : url_arg, "ws://", 80);

    if (api_arg == NULL) {
        snprintf(buf, sizeof(buf), "http://%s/api/send-to-user",
                 cfg.url.hostport);
    }
    parse_url(&cfg.api_url, api_arg ? api_arg : buf, "http://", 80);

    if (cfg.pairs < 0) {
        cfg.pairs = (cfg.mode == MODE_BUSY) ? 4 : 50;
    }

    if (cfg.rate < 0) {
        cfg.rate = (cfg.mode == MODE_API) ? 1000
                   : (cfg.mode == MODE_BUSY) ? 50.0 * (double) (1 + cfg.pairs)
                   : 0;
    }

    if (cfg.mode == MODE_BUSY) {
        if (cfg.rate <= 0) {
            die("busy mode needs a rate above 0");
        }
        if (cfg.procs != 1) {
            die("busy mode runs in one process");
        }
        cfg.threads = 2;
        cfg.deflate = 1;
        cfg.placement = PLACE_CROSS;
    }

    if (cfg.mode == MODE_API && cfg.rate <= 0) {
        die("api mode needs a rate above 0");
    }

    if (cfg.mode == MODE_API || cfg.mode == MODE_BUSY) {
        cfg.reconnect = 0;
    }

    if (cfg.backoff_max < cfg.backoff) {
        cfg.backoff_max = cfg.backoff;
    }

    if (cfg.mode == MODE_CONNECT) {
        cfg.rate = 0;
        cfg.warmup = 0;
    }

    if (cfg.events != NULL && cfg.mode != MODE_CHAT) {
        die("--events is for chat mode");
    }

    if (cfg.events != NULL && cfg.procs != 1) {
        die("--events needs one process (-p 1)");
    }
}


/* ---- processes, phases, main ---- */

static void
on_signal(int sig)
{
    (void) sig;
    g_interrupted = 1;
}


static void
raise_nofile(void)
{
    struct rlimit  rl;
    long           need;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }

    need = g_mode->sockets() / cfg.procs + 64;

    if ((rlim_t) need > rl.rlim_cur && !cfg.quiet) {
        fprintf(stderr, "wsload: warning: %ld sockets per process but the "
                "open-files limit is %llu: use -p %ld\n", need,
                (unsigned long long) rl.rlim_cur,
                (long) ((need * cfg.procs) / (long) (rl.rlim_cur - 64) + 1));
    }
}


/* Sleeps until deadline (or an interrupt, or cond() holds). */
static void
wait_until(uint64_t deadline, int (*cond)(void))
{
    struct timespec  ts;
    uint64_t         now;

    while (!g_interrupted && (cond == NULL || !cond())) {
        now = now_ns();
        if (now >= deadline) {
            return;
        }
        now = deadline - now;
        if (now > 10000000ULL) {
            now = 10000000ULL;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long) now;
        nanosleep(&ts, NULL);
    }
}


static uint64_t
cpu_us_self(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t) ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec
           + (uint64_t) ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}


static int
write_all(int fd, const void *buf, size_t len)
{
    const uint8_t  *p = buf;
    ssize_t         n;

    while (len) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}


static int
read_all(int fd, void *buf, size_t len)
{
    uint8_t  *p = buf;
    ssize_t   n;

    while (len) {
        n = read(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}


static void
touch_ready_file(void)
{
    FILE  *f;

    if (cfg.ready_file == NULL) {
        return;
    }

    f = fopen(cfg.ready_file, "w");
    if (f) {
        fprintf(f, "%d\n", (int) getpid());
        fclose(f);
    }
}


/*
 * Runs this process's share: setup, (sync), run, drain, close.  up/down
 * are the pipes to the parent, or -1 in a single process.  cpu0/cpu1
 * bracket the setup (connect mode) or the measured window.
 */
static void
run_engine(wl_result_t *total, int up, int down, wl_cpustat_t *cpu0,
    wl_cpustat_t *cpu1)
{
    uint64_t         t, cpu_start, cpu_run = 0, cpu_setup, start_ms;
    struct timespec  wall;
    char             b;

    cpu_start = cpu_us_self();
    wl_cpustat_read(cpu0);
    engine_start();

    wait_until(UINT64_MAX, all_ready);
    cpu_setup = cpu_us_self() - cpu_start;

    if (cfg.mode == MODE_CONNECT) {
        wl_cpustat_read(cpu1);
    }

    if (up >= 0) {
        b = 'R';
        if (write_all(up, &b, 1) != 0 || read_all(down, &b, 1) != 0) {
            g_interrupted = 1;
        }

    } else {
        touch_ready_file();
    }

    t = now_ns();
    clock_gettime(CLOCK_REALTIME, &wall);
    start_ms = (uint64_t) wall.tv_sec * 1000
               + (uint64_t) wall.tv_nsec / 1000000;
    g_run_start = t;
    g_meas_start = t + (uint64_t) (cfg.warmup * 1e9);
    g_meas_end = (cfg.mode == MODE_CONNECT)
                 ? t + (uint64_t) (cfg.hold * 1e9)
                 : g_meas_start + (uint64_t) (cfg.duration * 1e9);

    set_phase(PH_RUN);

    wait_until(g_meas_start, NULL);
    if (cfg.mode != MODE_CONNECT) {
        cpu_run = cpu_us_self();
        wl_cpustat_read(cpu0);
    }

    wait_until(g_meas_end, NULL);

    if (cfg.mode != MODE_CONNECT) {
        cpu_run = cpu_us_self() - cpu_run;
        wl_cpustat_read(cpu1);
    }

    t = now_ns();
    if (t < g_meas_end) {
        g_meas_end = t;         /* interrupted: measure what ran */
    }

    set_phase(PH_DRAIN);
    if (cfg.mode != MODE_CONNECT) {
        g_interrupted = 0;
        wait_until(now_ns() + (uint64_t) (cfg.drain * 1e9), all_drained);
    }

    set_phase(PH_CLOSE);
    g_interrupted = 0;
    wait_until(now_ns() + (uint64_t) (cfg.close_wait * 1e9) + 50000000ULL,
               all_closed);

    set_phase(PH_EXIT);
    engine_join(total);

    total->run_start_unix_ms = start_ms;
    total->c[WC_gen_cpu_us] = cpu_run;
    total->c[WC_setup_cpu_us] = cpu_setup;
    total->run_ns = g_meas_end > g_meas_start ? g_meas_end - g_meas_start
                                              : 0;
}


int
main(int argc, char **argv)
{
    static wl_result_t  total, part;
    wl_cpustat_t        cpu0, cpu1, scratch0, scratch1;
    pid_t              *kids;
    int                (*up)[2], (*down)[2];
    int                 i, rc = 0, status;
    char                b;

    parse_args(argc, argv);
    raise_nofile();

    if (cfg.size > 0) {
        pad_init();
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    if (cfg.procs == 1) {
        chat_events_open();
        run_engine(&total, -1, -1, &cpu0, &cpu1);
        chat_events_close();
        return wl_report(&cfg, &total, &cpu0, &cpu1);
    }

    kids = calloc((size_t) cfg.procs, sizeof(pid_t));
    up = calloc((size_t) cfg.procs, sizeof(*up));
    down = calloc((size_t) cfg.procs, sizeof(*down));
    if (kids == NULL || up == NULL || down == NULL) {
        die("out of memory");
    }

    wl_cpustat_read(&cpu0);

    for (i = 0; i < cfg.procs; i++) {
        if (pipe(up[i]) != 0 || pipe(down[i]) != 0) {
            die("pipe: %s", strerror(errno));
        }

        kids[i] = fork();
        if (kids[i] < 0) {
            die("fork: %s", strerror(errno));
        }

        if (kids[i] == 0) {
            cfg.proc_index = i;
            close(up[i][0]);
            close(down[i][1]);
            run_engine(&part, up[i][1], down[i][0], &scratch0, &scratch1);
            b = 'D';
            if (write_all(up[i][1], &b, 1) != 0
                || write_all(up[i][1], &part, sizeof(part)) != 0)
            {
                _exit(3);
            }
            _exit(0);
        }

        close(up[i][1]);
        close(down[i][0]);
    }

    /* every process set up, then all start together */
    for (i = 0; i < cfg.procs; i++) {
        if (read_all(up[i][0], &b, 1) != 0 || b != 'R') {
            fprintf(stderr, "wsload: process %d failed during setup\n", i);
            rc = 1;
        }
    }

    touch_ready_file();

    if (cfg.mode == MODE_CONNECT) {
        wl_cpustat_read(&cpu1);
    }

    b = 'G';
    for (i = 0; i < cfg.procs; i++) {
        if (write_all(down[i][1], &b, 1) != 0) {
            rc = 1;
        }
    }

    if (cfg.mode != MODE_CONNECT) {
        wait_until(now_ns() + (uint64_t) (cfg.warmup * 1e9), NULL);
        wl_cpustat_read(&cpu0);
        wait_until(now_ns() + (uint64_t) (cfg.duration * 1e9), NULL);
        wl_cpustat_read(&cpu1);
    }

    wl_result_init(&total);

    for (i = 0; i < cfg.procs; i++) {
        if (read_all(up[i][0], &b, 1) != 0 || b != 'D'
            || read_all(up[i][0], &part, sizeof(part)) != 0)
        {
            fprintf(stderr, "wsload: process %d returned no result\n", i);
            rc = 1;
            continue;
        }

        wl_result_merge(&total, &part);
    }

    for (i = 0; i < cfg.procs; i++) {
        waitpid(kids[i], &status, 0);
        close(up[i][0]);
        close(down[i][1]);
    }

    free(kids);
    free(up);
    free(down);

    /* every process measured a window of the same length */
    total.run_ns /= (uint64_t) cfg.procs;

    status = wl_report(&cfg, &total, &cpu0, &cpu1);
    return rc ? rc : status;
}

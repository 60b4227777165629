/*
 * wsload: WebSocket load generator for the relay protocol.
 * Shared types of the engine (wsload.c, engine.c, mode_*.c) and the
 * report (report.c).
 */

#ifndef WSLOAD_H
#define WSLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "hist.h"
#include "resume.h"

typedef enum {
    MODE_CONNECT = 0,
    MODE_CHAT,
    MODE_API,
    MODE_BUSY,
    MODE_MAX
} wl_mode_t;

typedef enum {
    PLACE_ANY = 0,
    PLACE_SAME,
    PLACE_CROSS,
    PLACE_MAX
} wl_placement_t;

typedef struct {
    char                host[256];
    char                hostport[300];     /* the Host header */
    char                path[1024];
    int                 port;
    struct sockaddr_in  addr;
    int                 loopback;
} wl_url_t;

typedef struct {
    wl_mode_t       mode;
    wl_url_t        url;            /* senders, idle connections, API users */
    wl_url_t        peer_url;       /* chat receivers */
    wl_url_t        api_url;        /* POST target in api mode */
    int             threads;
    int             procs;
    long            connections;
    long            concurrency;
    double          hold;
    long            pairs;
    long            window;
    double          rate;           /* 0: closed loop */
    double          duration;
    double          warmup;
    double          drain;
    double          timeout;
    double          close_wait;
    long            size;           /* chat text padded to this many bytes */
    long            bomb_size;      /* busy mode: a bomb's inflated size */
    const char     *bombs;          /* busy mode: the kinds sent in turn */
    int             deflate;        /* offer permessage-deflate */
    int             reconnect;      /* come back after a drop, resume */
    double          backoff;        /* first reconnect delay bound (s) */
    double          backoff_max;
    wl_placement_t  placement;
    long            placement_tries;
    long            users;
    long            api_conns;
    long            api_pipeline;
    int             src_ips;
    const char     *json;
    const char     *ready_file;
    const char     *events;         /* chat mode: the event log */
    char            prefix[64];
    int             quiet;
    int             proc_index;     /* which of procs this process is */
} wl_config_t;

/* Counters: one list drives the struct, merging and both reports. */
#define WL_COUNTERS(X)                                                       \
    X(attempted,          "connections attempted")                          \
    X(established,        "connections established (handshake+register)")   \
    X(placement_retries,  "reconnects to reach the wanted placement")       \
    X(fail_refused,       "connect refused")                                \
    X(fail_connect,       "connect error (other)")                          \
    X(fail_addr,          "no source address/port (EADDRNOTAVAIL)")         \
    X(fail_fdlimit,       "out of file descriptors")                        \
    X(fail_timeout,       "timeout before registered")                      \
    X(fail_status,        "handshake status not 101")                       \
    X(fail_accept,        "bad or missing Sec-WebSocket-Accept")            \
    X(fail_extension,     "bad Sec-WebSocket-Extensions answer")            \
    X(fail_capacity,      "server at capacity (error + close 1013)")        \
    X(fail_closed,        "close frame before registered")                  \
    X(fail_eof,           "EOF or reset before registered")                 \
    X(fail_register,      "register refused (error reply)")                 \
    X(fail_protocol,      "protocol error before registered")               \
    X(pings,              "server pings answered")                          \
    X(server_closes,      "close frames from the server after registered")  \
    X(eof_after_ready,    "EOF or reset after registered")                  \
    X(protocol_errors,    "protocol errors after registered")               \
    X(bad_utf8,           "text messages with invalid UTF-8")               \
    X(server_errors,      "error messages from the server")                 \
    X(unexpected,         "unexpected messages")                            \
    X(close_clean,        "closes answered by the server")                  \
    X(close_timeout,      "closes not answered in time")                    \
    X(pairs_same,         "pairs on the same worker")                       \
    X(pairs_cross,        "pairs on different workers")                     \
    X(pairs_unknown,      "pairs with an unknown worker")                   \
    X(pairs_failed,       "pairs not established")                          \
    X(pairs_misplaced,    "pairs left on the wrong placement")              \
    X(sent,               "chat messages sent")                             \
    X(received,           "chat messages received (unique)")                \
    X(received_window,    "chat messages received in the window")          \
    X(received_same,      "  of which same-worker pairs")                   \
    X(received_cross,     "  of which cross-worker pairs")                  \
    X(duplicates,         "duplicate messages")                             \
    X(reordered,          "messages out of order")                          \
    X(lost,               "messages never received")                        \
    X(misrouted,          "messages with a wrong sender")                   \
    X(bogus,              "messages with an unparsable or unknown seq")     \
    X(acks_delivered,     "chat_delivered with delivered:true")             \
    X(acks_undelivered,   "chat_delivered with delivered:false")            \
    X(late_sends,         "open-loop sends more than 1 ms behind schedule") \
    X(api_sent,           "API requests sent")                              \
    X(api_ok,             "API replies 200 with success:true")              \
    X(api_http_error,     "API replies with another status")                \
    X(api_bad_reply,      "API 200 replies without success:true")          \
    X(api_conn_errors,    "API connection errors (requests lost)")          \
    X(api_delivered_sum,  "sum of API delivered counts")                    \
    X(api_received,       "API messages received by users (unique)")        \
    X(api_received_window, "API messages received in the window")           \
    X(api_duplicates,     "API duplicate deliveries")                       \
    X(api_lost,           "API messages never received")                    \
    X(deflate_declined,   "handshakes without the deflate we offered")      \
    X(wire_in,            "bytes read from the sockets")                    \
    X(wire_out,           "bytes written to the sockets")                   \
    X(data_in,            "data message bytes received (inflated)")         \
    X(data_in_framed,     "data message bytes received as framed")          \
    X(data_in_compressed, "data messages received compressed")              \
    X(data_out,           "data message bytes sent (before deflate)")       \
    X(data_out_framed,    "data message bytes sent as framed")              \
    X(data_out_compressed, "data messages sent compressed")                 \
    X(bombs_sent,         "bombs sent")                                     \
    X(bombs_sent_window,  "bombs sent in the window")                       \
    X(bomb_echoes,        "bombs answered with their chat (valid)")         \
    X(bomb_refusals,      "bombs answered \"Invalid message format\"")      \
    X(bomb_other,         "other replies to the bomber")                    \
    X(bomb_answers_window, "bomb answers in the window")                    \
    X(victim_placed,      "victims on the bomber's worker")                 \
    X(pings_sent,         "victim pings sent")                              \
    X(pongs,              "victim pongs received")                          \
    X(pongs_window,       "pongs to pings scheduled in the window")         \
    X(pings_lost,         "victim pings never answered")                    \
    X(drops,              "registered connections dropped by the server")   \
    X(reconnects,         "reconnect attempts")                             \
    X(reconnected,        "reconnects registered again")                    \
    X(reconnect_failures, "reconnect attempts that failed")                 \
    X(reconnects_pending, "reconnects not done when the run ended")         \
    X(resumes,            "registers with \"since\"")                        \
    X(recovered_true,     "  answered \"recovered\":true")                   \
    X(recovered_false,    "  answered \"recovered\":false")                  \
    X(recovered_missing,  "  answered without \"recovered\"")                \
    X(resume_no_id,       "reconnects with no id to resume from")           \
    X(early_chats,        "chats before the register reply of a resume")    \
    X(with_id,            "chat messages received with an id")              \
    X(id_not_above,       "new chat messages whose id is not above the last") \
    X(bad_id,             "chat messages whose id is not a message id")     \
    X(received_resumed,   "chats received after a reconnect, sent before it") \
    X(acks_queued,        "chat_delivered with queued:true")                \
    X(acks_with_id,       "chat_delivered with an id (stored)")             \
    X(lost_unacked,       "lost messages a dropped sender saw no reply to") \
    X(lost_promised,      "lost messages answered delivered or queued")     \
    X(acks_unkept,        "chat_delivered with delivered and queued false") \
    X(pairs_lossy,        "pairs that lost messages")                       \
    X(pairs_dup,          "pairs with duplicates")                          \
    X(pairs_reordered,    "pairs with messages out of order")               \
    X(gen_cpu_us,         "load generator CPU time in the window (us)")     \
    X(setup_cpu_us,       "load generator CPU time during setup (us)")

#define WL_X_ENUM(name, text)  WC_##name,
enum { WL_COUNTERS(WL_X_ENUM) WC_MAX };
#undef WL_X_ENUM

typedef enum {
    WH_SETUP = 0,     /* connect start to register reply */
    WH_CHAT,          /* chat send (or scheduled send) to receipt */
    WH_CHAT_SAME,
    WH_CHAT_CROSS,
    WH_API_HTTP,      /* scheduled request time to full reply */
    WH_API_DELIVERY,  /* scheduled request time to receipt by the user */
    WH_SEND_LAG,      /* open loop: scheduled time to the send being queued */
    WH_PING,          /* busy mode: scheduled ping time to its pong */
    WH_RECONNECT,     /* --reconnect: the drop to registered again */
    WH_MAX
} wl_hist_id_t;

#define WL_CLOSE_CODES  17   /* 1000..1015, then "other" */

typedef struct {
    uint64_t  c[WC_MAX];
    uint64_t  close_codes[WL_CLOSE_CODES];
    uint64_t  setup_first_ns;       /* first connect started */
    uint64_t  setup_last_ns;        /* last connection registered */
    uint64_t  run_ns;               /* length of the measurement window */
    int       last_status;          /* last non-101 handshake status */
    uint64_t  run_start_unix_ms;    /* wall clock at the run's start */
    hist_t    h[WH_MAX];
    timeline_t  drops;              /* --reconnect: from the run's start */
    timeline_t  reconnects;
} wl_result_t;

extern const char *wl_counter_names[WC_MAX];
extern const char *wl_counter_texts[WC_MAX];
extern const char *wl_hist_names[WH_MAX];
extern const char *wl_mode_names[MODE_MAX];
extern const char *wl_placement_names[PLACE_MAX];

void wl_result_init(wl_result_t *r);
void wl_result_merge(wl_result_t *dst, const wl_result_t *src);

typedef struct {
    uint64_t  user, nice, system, idle, iowait, irq, softirq, steal;
} wl_cpustat_t;

void wl_cpustat_read(wl_cpustat_t *s);

/*
 * Prints the summary and, when asked, writes the JSON file; cpu0/cpu1
 * bracket the measured part (setup in connect mode, else the window).
 * Returns the exit status.
 */
int wl_report(const wl_config_t *cfg, const wl_result_t *r,
    const wl_cpustat_t *cpu0, const wl_cpustat_t *cpu1);

#endif

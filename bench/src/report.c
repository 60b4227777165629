/*
 * wsload results: merging, the human summary and the JSON file.
 */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wsload.h"

#define WL_X_NAME(name, text)  #name,
#define WL_X_TEXT(name, text)  text,
const char *wl_counter_names[WC_MAX] = { WL_COUNTERS(WL_X_NAME) };
const char *wl_counter_texts[WC_MAX] = { WL_COUNTERS(WL_X_TEXT) };
#undef WL_X_NAME
#undef WL_X_TEXT

const char *wl_hist_names[WH_MAX] = {
    "setup", "chat", "chat_same_worker", "chat_cross_worker",
    "api_http", "api_delivery", "send_lag", "ping", "reconnect"
};

const char *wl_mode_names[MODE_MAX] = { "connect", "chat", "api", "busy" };
const char *wl_placement_names[PLACE_MAX] = { "any", "same", "cross" };

static const double  pcts[] = { 50, 90, 99, 99.9 };
static const char   *pct_names[] = { "p50", "p90", "p99", "p99.9" };


void
wl_result_init(wl_result_t *r)
{
    int  i;

    memset(r, 0, sizeof(*r));
    for (i = 0; i < WH_MAX; i++) {
        hist_init(&r->h[i]);
    }
}


void
wl_result_merge(wl_result_t *dst, const wl_result_t *src)
{
    int  i;

    for (i = 0; i < WC_MAX; i++) {
        dst->c[i] += src->c[i];
    }

    for (i = 0; i < WL_CLOSE_CODES; i++) {
        dst->close_codes[i] += src->close_codes[i];
    }

    for (i = 0; i < WH_MAX; i++) {
        hist_merge(&dst->h[i], &src->h[i]);
    }

    if (src->setup_first_ns
        && (dst->setup_first_ns == 0
            || src->setup_first_ns < dst->setup_first_ns))
    {
        dst->setup_first_ns = src->setup_first_ns;
    }

    if (src->setup_last_ns > dst->setup_last_ns) {
        dst->setup_last_ns = src->setup_last_ns;
    }

    dst->run_ns += src->run_ns;

    if (src->run_start_unix_ms
        && (dst->run_start_unix_ms == 0
            || src->run_start_unix_ms < dst->run_start_unix_ms))
    {
        dst->run_start_unix_ms = src->run_start_unix_ms;
    }

    timeline_merge(&dst->drops, &src->drops);
    timeline_merge(&dst->reconnects, &src->reconnects);

    if (src->last_status) {
        dst->last_status = src->last_status;
    }
}


void
wl_cpustat_read(wl_cpustat_t *s)
{
    FILE                *f;
    unsigned long long   v[8] = { 0 };

    memset(s, 0, sizeof(*s));

    f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return;
    }

    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
    {
        s->user = v[0]; s->nice = v[1]; s->system = v[2]; s->idle = v[3];
        s->iowait = v[4]; s->irq = v[5]; s->softirq = v[6]; s->steal = v[7];
    }

    fclose(f);
}


static void
cpu_model(char *buf, size_t len)
{
    FILE  *f = fopen("/proc/cpuinfo", "r");
    char   line[512], *colon, *nl;

    snprintf(buf, len, "unknown");
    if (f == NULL) {
        return;
    }

    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0
            && (colon = strchr(line, ':')) != NULL)
        {
            colon += 2;
            if ((nl = strchr(colon, '\n')) != NULL) {
                *nl = '\0';
            }
            snprintf(buf, len, "%s", colon);
            break;
        }
    }

    fclose(f);
}


typedef struct {
    double  user, system, softirq, steal, idle;
} wl_cpu_pct_t;


static void
cpu_pct(const wl_cpustat_t *a, const wl_cpustat_t *b, wl_cpu_pct_t *p)
{
    double  u, sy, si, st, id, tot;

    u = (double) (b->user + b->nice - a->user - a->nice);
    sy = (double) (b->system + b->irq - a->system - a->irq);
    si = (double) (b->softirq - a->softirq);
    st = (double) (b->steal - a->steal);
    id = (double) (b->idle + b->iowait - a->idle - a->iowait);
    tot = u + sy + si + st + id;

    if (tot <= 0) {
        memset(p, 0, sizeof(*p));
        return;
    }

    p->user = 100 * u / tot;
    p->system = 100 * sy / tot;
    p->softirq = 100 * si / tot;
    p->steal = 100 * st / tot;
    p->idle = 100 * id / tot;
}


static double
us(uint64_t ns)
{
    return (double) ns / 1000.0;
}


static void
print_hist(const char *label, const hist_t *h)
{
    size_t  i;

    if (h->count == 0) {
        return;
    }

    printf("  %-18s n=%-9llu", label, (unsigned long long) h->count);
    for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        printf(" %s %.1f", pct_names[i], us(hist_percentile(h, pcts[i])));
    }
    printf(" max %.1f mean %.1f (us)\n", us(h->max), hist_mean(h) / 1000.0);
}


static void
json_hist(FILE *f, const hist_t *h)
{
    size_t  i;

    fprintf(f, "{\"count\":%llu", (unsigned long long) h->count);
    if (h->count) {
        fprintf(f, ",\"min\":%.1f,\"mean\":%.1f", us(h->min),
                hist_mean(h) / 1000.0);
        for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
            fprintf(f, ",\"%s\":%.1f", pct_names[i],
                    us(hist_percentile(h, pcts[i])));
        }
        fprintf(f, ",\"max\":%.1f", us(h->max));
    }
    fprintf(f, "}");
}


static void
json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', f);
        }
        if ((unsigned char) *s >= 0x20) {
            fputc(*s, f);
        }
    }
    fputc('"', f);
}


typedef struct {
    double  setup_s;
    double  establish_rate;
    double  run_s;
    double  throughput;
    double  api_rate;
    double  bombs_sent_rate;
    double  bomb_answer_rate;
    double  gen_cores;
} wl_figures_t;


static void
figures(const wl_config_t *cfg, const wl_result_t *r, wl_figures_t *fg)
{
    const uint64_t  *c = r->c;

    memset(fg, 0, sizeof(*fg));

    if (r->setup_last_ns > r->setup_first_ns) {
        fg->setup_s = (double) (r->setup_last_ns - r->setup_first_ns) / 1e9;
        fg->establish_rate = (double) c[WC_established] / fg->setup_s;
    }

    fg->run_s = (double) r->run_ns / 1e9;

    if (fg->run_s > 0) {
        fg->throughput = (double) (cfg->mode == MODE_API
                                   ? c[WC_api_received_window]
                                   : c[WC_received_window]) / fg->run_s;
        fg->api_rate = (double) r->h[WH_API_HTTP].count / fg->run_s;
        fg->bombs_sent_rate = (double) c[WC_bombs_sent_window] / fg->run_s;
        fg->bomb_answer_rate = (double) c[WC_bomb_answers_window]
                               / fg->run_s;
    }

    if (cfg->mode == MODE_CONNECT) {
        if (fg->setup_s > 0) {
            fg->gen_cores = (double) c[WC_setup_cpu_us] / 1e6 / fg->setup_s;
        }

    } else if (fg->run_s > 0) {
        fg->gen_cores = (double) c[WC_gen_cpu_us] / 1e6 / fg->run_s;
    }
}


/* --reconnect: drops, reconnects and their peaks, resumes, ids. */
static void
print_reconnect(const wl_config_t *cfg, const wl_result_t *r)
{
    const uint64_t  *c = r->c;
    uint64_t         peak, dpeak;
    size_t           at, dat;

    peak = timeline_peak(&r->reconnects, 10, &at);
    dpeak = timeline_peak(&r->drops, 10, &dat);

    printf("reconnect: %llu dropped by the server; %llu attempts, %llu "
           "registered again, %llu failed, %llu pending at the end\n",
           (unsigned long long) c[WC_drops],
           (unsigned long long) c[WC_reconnects],
           (unsigned long long) c[WC_reconnected],
           (unsigned long long) c[WC_reconnect_failures],
           (unsigned long long) c[WC_reconnects_pending]);
    printf("  peak per second (sliding): reconnect attempts %llu/s from "
           "%.1f s, drops %llu/s from %.1f s (after the run's start)\n",
           (unsigned long long) peak, (double) at * TL_BUCKET_NS / 1e9,
           (unsigned long long) dpeak, (double) dat * TL_BUCKET_NS / 1e9);
    print_hist("drop to registered", &r->h[WH_RECONNECT]);

    if (cfg->mode != MODE_CHAT) {
        return;
    }

    printf("  resumes with \"since\" %llu: recovered true %llu, false %llu, "
           "not said %llu; no id to resume from %llu; chats before the "
           "register reply %llu\n",
           (unsigned long long) c[WC_resumes],
           (unsigned long long) c[WC_recovered_true],
           (unsigned long long) c[WC_recovered_false],
           (unsigned long long) c[WC_recovered_missing],
           (unsigned long long) c[WC_resume_no_id],
           (unsigned long long) c[WC_early_chats]);
    printf("  chats with an id %llu, new ones whose id is not above the "
           "last %llu, bad ids %llu; received after a reconnect, sent "
           "before it %llu\n",
           (unsigned long long) c[WC_with_id],
           (unsigned long long) c[WC_id_not_above],
           (unsigned long long) c[WC_bad_id],
           (unsigned long long) c[WC_received_resumed]);
    printf("  chat_delivered queued:true %llu, with an id %llu, neither "
           "delivered nor queued %llu; lost %llu, of which a dropped sender "
           "had no reply to %llu, answered delivered or queued %llu\n",
           (unsigned long long) c[WC_acks_queued],
           (unsigned long long) c[WC_acks_with_id],
           (unsigned long long) c[WC_acks_unkept],
           (unsigned long long) c[WC_lost],
           (unsigned long long) c[WC_lost_unacked],
           (unsigned long long) c[WC_lost_promised]);
    printf("  pairs that lost messages %llu, with duplicates %llu, with "
           "messages out of order %llu\n",
           (unsigned long long) c[WC_pairs_lossy],
           (unsigned long long) c[WC_pairs_dup],
           (unsigned long long) c[WC_pairs_reordered]);
}


static void
json_timeline(FILE *f, const timeline_t *t)
{
    size_t  i, n = timeline_len(t);

    fputc('[', f);
    for (i = 0; i < n; i++) {
        fprintf(f, "%s%u", i ? "," : "", t->b[i]);
    }
    fputc(']', f);
}


static void
print_summary(const wl_config_t *cfg, const wl_result_t *r,
    const wl_figures_t *fg, const wl_cpu_pct_t *cp, const char *model)
{
    const uint64_t  *c = r->c;
    int              i;

    printf("wsload %s %s://%s%s  threads %d x procs %d  (%ld cpus, %s)\n",
           wl_mode_names[cfg->mode], "ws", cfg->url.hostport, cfg->url.path,
           cfg->threads, cfg->procs, sysconf(_SC_NPROCESSORS_ONLN), model);

    printf("setup: %llu/%llu registered in %.3f s: %.0f handshakes+registers"
           "/s\n", (unsigned long long) c[WC_established],
           (unsigned long long) c[WC_attempted], fg->setup_s,
           fg->establish_rate);
    print_hist("setup latency", &r->h[WH_SETUP]);

    for (i = WC_fail_refused; i <= WC_fail_protocol; i++) {
        if (c[i]) {
            printf("  failed: %-45s %llu\n", wl_counter_texts[i],
                   (unsigned long long) c[i]);
        }
    }
    if (r->last_status) {
        printf("  last handshake status: %d\n", r->last_status);
    }

    if (cfg->mode == MODE_BUSY) {
        printf("victim on the bomber's worker: %s (%llu reconnects in all)\n",
               c[WC_victim_placed] ? "yes" : "NO",
               (unsigned long long) c[WC_placement_retries]);
        printf("bombs of %ld bytes inflated (%s in turn), %.1f s measured: "
               "%.0f sent/s, %.0f answered/s\n", cfg->bomb_size, cfg->bombs,
               fg->run_s, fg->bombs_sent_rate, fg->bomb_answer_rate);
        printf("  sent %llu; answered: chat %llu, \"Invalid message "
               "format\" %llu, other %llu\n",
               (unsigned long long) c[WC_bombs_sent],
               (unsigned long long) c[WC_bomb_echoes],
               (unsigned long long) c[WC_bomb_refusals],
               (unsigned long long) c[WC_bomb_other]);
        printf("victim: pings sent %llu, pongs %llu, lost %llu\n",
               (unsigned long long) c[WC_pings_sent],
               (unsigned long long) c[WC_pongs],
               (unsigned long long) c[WC_pings_lost]);
        print_hist("ping round trip", &r->h[WH_PING]);
    }

    if (cfg->mode == MODE_CHAT || cfg->mode == MODE_BUSY) {
        printf("pairs: %ld wanted, %llu same-worker, %llu cross-worker, "
               "%llu unknown, %llu failed (placement %s, %llu reconnects, "
               "%llu misplaced)\n", cfg->pairs,
               (unsigned long long) c[WC_pairs_same],
               (unsigned long long) c[WC_pairs_cross],
               (unsigned long long) c[WC_pairs_unknown],
               (unsigned long long) c[WC_pairs_failed],
               wl_placement_names[cfg->placement],
               (unsigned long long) c[WC_placement_retries],
               (unsigned long long) c[WC_pairs_misplaced]);

        if (cfg->rate > 0) {
            printf("open loop at %.0f msgs/s", cfg->rate);

        } else {
            printf("closed loop, window %ld per pair", cfg->window);
        }

        printf(", %.1f s measured: %.0f msgs/s received\n", fg->run_s,
               fg->throughput);
        printf("  sent %llu, received %llu, lost %llu, duplicates %llu, "
               "reordered %llu, misrouted %llu, bogus %llu\n",
               (unsigned long long) c[WC_sent],
               (unsigned long long) c[WC_received],
               (unsigned long long) c[WC_lost],
               (unsigned long long) c[WC_duplicates],
               (unsigned long long) c[WC_reordered],
               (unsigned long long) c[WC_misrouted],
               (unsigned long long) c[WC_bogus]);
        printf("  chat_delivered true %llu, false %llu; late sends %llu\n",
               (unsigned long long) c[WC_acks_delivered],
               (unsigned long long) c[WC_acks_undelivered],
               (unsigned long long) c[WC_late_sends]);
        print_hist("latency", &r->h[WH_CHAT]);
        print_hist("  same-worker", &r->h[WH_CHAT_SAME]);
        print_hist("  cross-worker", &r->h[WH_CHAT_CROSS]);
        print_hist("send lag (ours)", &r->h[WH_SEND_LAG]);
    }

    if (cfg->mode == MODE_API) {
        printf("api: %.0f req/s scheduled to %ld users, %.1f s measured: "
               "%.0f replies/s, %.0f deliveries/s\n", cfg->rate, cfg->users,
               fg->run_s, fg->api_rate, fg->throughput);
        printf("  sent %llu, ok %llu, http errors %llu, bad replies %llu, "
               "connection errors %llu, delivered (sum) %llu\n",
               (unsigned long long) c[WC_api_sent],
               (unsigned long long) c[WC_api_ok],
               (unsigned long long) c[WC_api_http_error],
               (unsigned long long) c[WC_api_bad_reply],
               (unsigned long long) c[WC_api_conn_errors],
               (unsigned long long) c[WC_api_delivered_sum]);
        printf("  received %llu, lost %llu, duplicates %llu, "
               "late sends %llu\n",
               (unsigned long long) c[WC_api_received],
               (unsigned long long) c[WC_api_lost],
               (unsigned long long) c[WC_api_duplicates],
               (unsigned long long) c[WC_late_sends]);
        print_hist("http latency", &r->h[WH_API_HTTP]);
        print_hist("delivery latency", &r->h[WH_API_DELIVERY]);
        print_hist("send lag (ours)", &r->h[WH_SEND_LAG]);
    }

    if (cfg->mode == MODE_CONNECT) {
        printf("held %.1f s: %llu pings answered\n", cfg->hold,
               (unsigned long long) c[WC_pings]);
    }

    if (cfg->reconnect) {
        print_reconnect(cfg, r);
    }

    printf("connection events: pings %llu, server closes %llu, "
           "EOF %llu, protocol errors %llu, error messages %llu, "
           "unexpected %llu, bad UTF-8 %llu\n",
           (unsigned long long) c[WC_pings],
           (unsigned long long) c[WC_server_closes],
           (unsigned long long) c[WC_eof_after_ready],
           (unsigned long long) c[WC_protocol_errors],
           (unsigned long long) c[WC_server_errors],
           (unsigned long long) c[WC_unexpected],
           (unsigned long long) c[WC_bad_utf8]);

    for (i = 0; i < WL_CLOSE_CODES; i++) {
        if (r->close_codes[i]) {
            if (i < 16) {
                printf("  close code %d from server: %llu\n", 1000 + i,
                       (unsigned long long) r->close_codes[i]);
            } else {
                printf("  other close codes from server: %llu\n",
                       (unsigned long long) r->close_codes[i]);
            }
        }
    }

    printf("bytes: read %llu, written %llu; data messages in %llu (%llu as "
           "framed), out %llu (%llu as framed)\n",
           (unsigned long long) c[WC_wire_in],
           (unsigned long long) c[WC_wire_out],
           (unsigned long long) c[WC_data_in],
           (unsigned long long) c[WC_data_in_framed],
           (unsigned long long) c[WC_data_out],
           (unsigned long long) c[WC_data_out_framed]);

    if (cfg->deflate) {
        printf("permessage-deflate offered: declined by %llu handshakes; "
               "messages compressed: %llu received, %llu sent\n",
               (unsigned long long) c[WC_deflate_declined],
               (unsigned long long) c[WC_data_in_compressed],
               (unsigned long long) c[WC_data_out_compressed]);
    }

    printf("close: %llu answered, %llu timed out\n",
           (unsigned long long) c[WC_close_clean],
           (unsigned long long) c[WC_close_timeout]);
    printf("cpu (%s): user %.1f%% sys %.1f%% softirq %.1f%% steal %.1f%% "
           "idle %.1f%%; wsload used %.2f cores\n",
           cfg->mode == MODE_CONNECT ? "during setup" : "during the window",
           cp->user, cp->system, cp->softirq, cp->steal, cp->idle,
           fg->gen_cores);
}


static int
write_json(const wl_config_t *cfg, const wl_result_t *r,
    const wl_figures_t *fg, const wl_cpu_pct_t *cp, const char *model)
{
    FILE      *f;
    int        i, first;
    uint64_t   peak, dpeak;
    size_t     at, dat;

    f = fopen(cfg->json, "w");
    if (f == NULL) {
        perror(cfg->json);
        return -1;
    }

    fprintf(f, "{\"tool\":\"wsload\",\"mode\":\"%s\",\"url\":",
            wl_mode_names[cfg->mode]);
    json_string(f, cfg->url.hostport);
    fprintf(f, ",\"path\":");
    json_string(f, cfg->url.path);
    fprintf(f, ",\"peer_url\":");
    json_string(f, cfg->peer_url.hostport);
    fprintf(f, ",\"threads\":%d,\"procs\":%d", cfg->threads, cfg->procs);

    fprintf(f, ",\"params\":{\"connections\":%ld,\"concurrency\":%ld,"
            "\"hold_s\":%g,\"pairs\":%ld,\"window\":%ld,\"rate\":%g,"
            "\"duration_s\":%g,\"warmup_s\":%g,\"size\":%ld,"
            "\"deflate\":%s,\"placement\":\"%s\",\"users\":%ld,"
            "\"api_conns\":%ld,\"api_pipeline\":%ld,\"src_ips\":%d,"
            "\"bomb_size\":%ld,\"bombs\":\"%s\",\"reconnect\":%s,"
            "\"backoff_s\":%g,\"backoff_max_s\":%g}",
            cfg->connections, cfg->concurrency, cfg->hold, cfg->pairs,
            cfg->window, cfg->rate, cfg->duration, cfg->warmup, cfg->size,
            cfg->deflate ? "true" : "false",
            wl_placement_names[cfg->placement], cfg->users, cfg->api_conns,
            cfg->api_pipeline, cfg->src_ips, cfg->bomb_size, cfg->bombs,
            cfg->reconnect ? "true" : "false", cfg->backoff,
            cfg->backoff_max);

    fprintf(f, ",\"machine\":{\"cpus\":%ld,\"model\":",
            sysconf(_SC_NPROCESSORS_ONLN));
    json_string(f, model);
    fprintf(f, ",\"cpu_pct\":{\"user\":%.1f,\"system\":%.1f,"
            "\"softirq\":%.1f,\"steal\":%.1f,\"idle\":%.1f}}",
            cp->user, cp->system, cp->softirq, cp->steal, cp->idle);

    fprintf(f, ",\"figures\":{\"setup_s\":%.4f,\"establish_per_s\":%.1f,"
            "\"run_s\":%.3f,\"throughput_msgs_per_s\":%.1f,"
            "\"api_replies_per_s\":%.1f,\"bombs_sent_per_s\":%.1f,"
            "\"bomb_answers_per_s\":%.1f,\"generator_cores\":%.3f}",
            fg->setup_s, fg->establish_rate, fg->run_s, fg->throughput,
            fg->api_rate, fg->bombs_sent_rate, fg->bomb_answer_rate,
            fg->gen_cores);

    fprintf(f, ",\"counters\":{");
    for (i = 0; i < WC_MAX; i++) {
        fprintf(f, "%s\"%s\":%llu", i ? "," : "", wl_counter_names[i],
                (unsigned long long) r->c[i]);
    }
    fprintf(f, "},\"last_handshake_status\":%d", r->last_status);

    fprintf(f, ",\"close_codes\":{");
    first = 1;
    for (i = 0; i < WL_CLOSE_CODES; i++) {
        if (r->close_codes[i]) {
            if (i < 16) {
                fprintf(f, "%s\"%d\":%llu", first ? "" : ",", 1000 + i,
                        (unsigned long long) r->close_codes[i]);
            } else {
                fprintf(f, "%s\"other\":%llu", first ? "" : ",",
                        (unsigned long long) r->close_codes[i]);
            }
            first = 0;
        }
    }

    fprintf(f, "},\"latency_us\":{");
    for (i = 0; i < WH_MAX; i++) {
        fprintf(f, "%s\"%s\":", i ? "," : "", wl_hist_names[i]);
        json_hist(f, &r->h[i]);
    }
    fprintf(f, "}");

    if (cfg->reconnect) {
        peak = timeline_peak(&r->reconnects, 10, &at);
        dpeak = timeline_peak(&r->drops, 10, &dat);
        fprintf(f, ",\"reconnect\":{\"run_start_unix_ms\":%llu,"
                "\"bucket_ms\":%llu,\"peak_reconnects_per_s\":%llu,"
                "\"peak_reconnects_at_s\":%.1f,\"peak_drops_per_s\":%llu,"
                "\"peak_drops_at_s\":%.1f,\"reconnects\":",
                (unsigned long long) r->run_start_unix_ms,
                (unsigned long long) (TL_BUCKET_NS / 1000000),
                (unsigned long long) peak,
                (double) at * TL_BUCKET_NS / 1e9, (unsigned long long) dpeak,
                (double) dat * TL_BUCKET_NS / 1e9);
        json_timeline(f, &r->reconnects);
        fprintf(f, ",\"drops\":");
        json_timeline(f, &r->drops);
        fprintf(f, "}");
    }

    fprintf(f, "}\n");

    return fclose(f) == 0 ? 0 : -1;
}


int
wl_report(const wl_config_t *cfg, const wl_result_t *r,
    const wl_cpustat_t *cpu0, const wl_cpustat_t *cpu1)
{
    wl_figures_t  fg;
    wl_cpu_pct_t  cp;
    char          model[256];
    int           rc = 0;

    cpu_model(model, sizeof(model));
    cpu_pct(cpu0, cpu1, &cp);
    figures(cfg, r, &fg);

    print_summary(cfg, r, &fg, &cp, model);
    fflush(stdout);

    if (cfg->json && write_json(cfg, r, &fg, &cp, model) != 0) {
        rc = 1;
    }

    if (r->c[WC_established] == 0
        || (cfg->mode == MODE_CHAT && r->c[WC_received] == 0)
        || (cfg->mode == MODE_API && r->c[WC_api_ok] == 0)
        || (cfg->mode == MODE_BUSY && r->c[WC_pongs] == 0))
    {
        rc = 1;
    }

    return rc;
}

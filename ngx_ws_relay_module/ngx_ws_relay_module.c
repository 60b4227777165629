
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_history.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_shm.h"


static void *ngx_ws_relay_create_main_conf(ngx_conf_t *cf);
static char *ngx_ws_relay_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_ws_relay_create_loc_conf(ngx_conf_t *cf);
static char *ngx_ws_relay_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_ws_relay(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_ws_relay_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_ws_relay_redis_list(ngx_conf_t *cf, ngx_str_t *list,
    ngx_int_t port, const char *what, ngx_array_t *endpoints);
static ngx_int_t ngx_ws_relay_redis_address(ngx_conf_t *cf, ngx_str_t *addr,
    in_port_t default_port, ngx_ws_relay_redis_endpoint_t *ep);
static char *ngx_ws_relay_limit_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_ws_relay_history(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_ws_relay_user_id(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_ws_relay_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_ws_relay_init_process(ngx_cycle_t *cycle);
static void ngx_ws_relay_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_ws_relay_deflate_level_bounds = {
    ngx_conf_check_num_bounds, 1, 9
};


static ngx_command_t  ngx_ws_relay_commands[] = {

    { ngx_string("ws_relay"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_ws_relay,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ws_relay_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_ws_relay_api_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ws_relay_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_ws_relay_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ws_relay_max_connections"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ws_relay_main_conf_t, max_connections),
      NULL },

    { ngx_string("ws_relay_close_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ws_relay_main_conf_t, close_timeout),
      NULL },

    { ngx_string("ws_relay_drain"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_ws_relay_main_conf_t, drain),
      NULL },

    { ngx_string("ws_relay_history"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_ws_relay_history,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ws_relay_heartbeat"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ws_relay_loc_conf_t, heartbeat),
      NULL },

    { ngx_string("ws_relay_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ws_relay_loc_conf_t, max_message_size),
      NULL },

    { ngx_string("ws_relay_send_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ws_relay_loc_conf_t, send_buffer),
      NULL },

    { ngx_string("ws_relay_deflate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ws_relay_loc_conf_t, deflate),
      NULL },

    { ngx_string("ws_relay_deflate_min_length"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ws_relay_loc_conf_t, deflate_min_length),
      NULL },

    { ngx_string("ws_relay_deflate_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_ws_relay_loc_conf_t, deflate_level),
      &ngx_ws_relay_deflate_level_bounds },

    { ngx_string("ws_relay_limit_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_ws_relay_limit_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ws_relay_user_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_ws_relay_user_id,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_ws_relay_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_ws_relay_postconfiguration,        /* postconfiguration */

    ngx_ws_relay_create_main_conf,         /* create main configuration */
    ngx_ws_relay_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_ws_relay_create_loc_conf,          /* create location configuration */
    ngx_ws_relay_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_ws_relay_module = {
    NGX_MODULE_V1,
    &ngx_ws_relay_module_ctx,              /* module context */
    ngx_ws_relay_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_ws_relay_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_ws_relay_exit_process,             /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_ws_relay_worker_t  ngx_ws_relay_worker;


static void *
ngx_ws_relay_create_main_conf(ngx_conf_t *cf)
{
    ngx_ws_relay_main_conf_t  *wmcf;

    wmcf = ngx_pcalloc(cf->pool, sizeof(ngx_ws_relay_main_conf_t));
    if (wmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     wmcf->redis.endpoints = NULL;
     *     wmcf->redis.password = { 0, NULL };
     *     wmcf->redis.prefix = { 0, NULL };
     *     wmcf->shm_zone = NULL;
     */

    wmcf->max_connections = NGX_CONF_UNSET_UINT;
    wmcf->close_timeout = NGX_CONF_UNSET_MSEC;
    wmcf->drain = NGX_CONF_UNSET_MSEC;
    wmcf->redis.enabled = NGX_CONF_UNSET;
    wmcf->redis.db = NGX_CONF_UNSET;
    wmcf->redis.timeout = NGX_CONF_UNSET_MSEC;
    wmcf->redis.ack_timeout = NGX_CONF_UNSET_MSEC;

    return wmcf;
}


static char *
ngx_ws_relay_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_ws_relay_main_conf_t  *wmcf = conf;

    ngx_conf_init_uint_value(wmcf->max_connections, 4000);
    ngx_conf_init_msec_value(wmcf->close_timeout, 5000);
    ngx_conf_init_msec_value(wmcf->drain, 0);

    ngx_conf_init_value(wmcf->redis.enabled, 0);
    ngx_conf_init_value(wmcf->redis.db, 0);
    ngx_conf_init_msec_value(wmcf->redis.timeout, 2000);
    ngx_conf_init_msec_value(wmcf->redis.ack_timeout, 500);

    if (wmcf->redis.prefix.data == NULL) {
        ngx_str_set(&wmcf->redis.prefix, "ws_relay:");
    }

    return NGX_CONF_OK;
}


static void *
ngx_ws_relay_create_loc_conf(ngx_conf_t *cf)
{
    ngx_ws_relay_loc_conf_t  *wlcf;

    wlcf = ngx_pcalloc(cf->pool, sizeof(ngx_ws_relay_loc_conf_t));
    if (wlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     wlcf->user_id = NULL;
     *     wlcf->user_id_optional = 0;
     */

    wlcf->enable = NGX_CONF_UNSET;
    wlcf->api = NGX_CONF_UNSET_UINT;
    wlcf->heartbeat = NGX_CONF_UNSET_MSEC;
    wlcf->max_message_size = NGX_CONF_UNSET_SIZE;
    wlcf->send_buffer = NGX_CONF_UNSET_SIZE;
    wlcf->deflate = NGX_CONF_UNSET;
    wlcf->deflate_min_length = NGX_CONF_UNSET_SIZE;
    wlcf->deflate_level = NGX_CONF_UNSET;
    wlcf->limit_rate = NGX_CONF_UNSET_UINT;
    wlcf->limit_burst = NGX_CONF_UNSET_UINT;
    wlcf->history.size = NGX_CONF_UNSET_UINT;

    return wlcf;
}


static char *
ngx_ws_relay_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_ws_relay_loc_conf_t  *prev = parent;
    ngx_ws_relay_loc_conf_t  *conf = child;

    ngx_ws_relay_main_conf_t  *wmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_msec_value(conf->heartbeat, prev->heartbeat, 30000);
    ngx_conf_merge_size_value(conf->max_message_size, prev->max_message_size,
                              1024 * 1024);
    ngx_conf_merge_size_value(conf->send_buffer, prev->send_buffer,
                              1024 * 1024);
    ngx_conf_merge_value(conf->deflate, prev->deflate, 1);
    ngx_conf_merge_size_value(conf->deflate_min_length,
                              prev->deflate_min_length, 256);
    ngx_conf_merge_value(conf->deflate_level, prev->deflate_level, 1);

    if (conf->limit_rate == NGX_CONF_UNSET_UINT) {
        conf->limit_rate = (prev->limit_rate == NGX_CONF_UNSET_UINT)
                           ? 0 : prev->limit_rate;
        conf->limit_burst = (prev->limit_burst == NGX_CONF_UNSET_UINT)
                            ? 0 : prev->limit_burst;
    }

    if (conf->user_id == NULL) {
        conf->user_id = prev->user_id;
        conf->user_id_optional = prev->user_id_optional;
    }

    if (conf->history.size == NGX_CONF_UNSET_UINT) {
        if (prev->history.size == NGX_CONF_UNSET_UINT) {
            conf->history.size = 0;

        } else {
            conf->history = prev->history;
        }
    }

    wmcf = ngx_http_conf_get_module_main_conf(cf, ngx_ws_relay_module);

    if (conf->history.size) {
        if (!wmcf->redis.enabled) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ws_relay_history\" needs "
                               "\"ws_relay_redis\"");
            return NGX_CONF_ERROR;
        }

        wmcf->history = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_ws_relay(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ws_relay_loc_conf_t *wlcf = conf;

    ngx_ws_relay_main_conf_t  *wmcf;
    ngx_http_core_loc_conf_t  *clcf;

    if (wlcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    wlcf->enable = 1;

    wmcf = ngx_http_conf_get_module_main_conf(cf, ngx_ws_relay_module);
    wmcf->used = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_ws_relay_handshake_handler;

    return NGX_CONF_OK;
}


/* "host:port,host:port,...": the sentinels, or a cluster's nodes */

static ngx_int_t
ngx_ws_relay_redis_list(ngx_conf_t *cf, ngx_str_t *list, ngx_int_t port,
    const char *what, ngx_array_t *endpoints)
{
    u_char                         *p;
    size_t                          len;
    ngx_str_t                       s, addr;
    ngx_ws_relay_redis_endpoint_t  *ep;

    s = *list;

    while (s.len) {
        p = ngx_strlchr(s.data, s.data + s.len, ',');
        len = p ? (size_t) (p - s.data) : s.len;

        addr.data = s.data;
        addr.len = len;

        if (len == 0 || (len > 5 && ngx_strncmp(addr.data, "unix:", 5) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ws_relay_redis\" has a %s that is not "
                               "host:port: \"%V\"", what, &addr);
            return NGX_ERROR;
        }

        ep = ngx_array_push(endpoints);
        if (ep == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(ep, sizeof(ngx_ws_relay_redis_endpoint_t));

        if (ngx_ws_relay_redis_address(cf, &addr, port, ep) != NGX_OK) {
            return NGX_ERROR;
        }

        s.data += len + (p ? 1 : 0);
        s.len -= len + (p ? 1 : 0);
    }

    if (endpoints->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ws_relay_redis\" has no %s", what);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static char *
ngx_ws_relay_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ws_relay_main_conf_t *wmcf = conf;

    ngx_str_t                      *value, s;
    ngx_uint_t                      i;
    ngx_ws_relay_redis_conf_t      *rcf;
    ngx_ws_relay_redis_endpoint_t  *ep;

    rcf = &wmcf->redis;

    if (rcf->enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rcf->endpoints = ngx_array_create(cf->pool, 1,
                                      sizeof(ngx_ws_relay_redis_endpoint_t));
    if (rcf->endpoints == NULL) {
        return NGX_CONF_ERROR;
    }

    ep = ngx_array_push(rcf->endpoints);
    if (ep == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(ep, sizeof(ngx_ws_relay_redis_endpoint_t));

    if (ngx_strncmp(value[1].data, "sentinel=", 9) == 0) {
        /* the master's address comes from the sentinels, at run time */

        ep->host.data = ngx_pcalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (ep->host.data == NULL) {
            return NGX_CONF_ERROR;
        }

        rcf->sentinels = ngx_array_create(cf->pool, 3,
                                       sizeof(ngx_ws_relay_redis_endpoint_t));
        if (rcf->sentinels == NULL) {
            return NGX_CONF_ERROR;
        }

        s.data = value[1].data + 9;
        s.len = value[1].len - 9;

        if (ngx_ws_relay_redis_list(cf, &s, 26379, "sentinel",
                                    rcf->sentinels)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

    } else if (ngx_strncmp(value[1].data, "cluster=", 8) == 0) {
        /* the nodes to ask for the slot map: the masters come from it */

        rcf->endpoints->nelts = 0;
        rcf->cluster = 1;

        s.data = value[1].data + 8;
        s.len = value[1].len - 8;

        if (ngx_ws_relay_redis_list(cf, &s, 6379, "cluster node",
                                    rcf->endpoints)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

    } else if (ngx_ws_relay_redis_address(cf, &value[1], 6379, ep)
               != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rcf->password.data = value[i].data + 9;
            rcf->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0
            && rcf->sentinels && value[i].len > 7)
        {
            rcf->master.data = value[i].data + 7;
            rcf->master.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel_password=", 18) == 0
            && rcf->sentinels)
        {
            rcf->sentinel_password.data = value[i].data + 18;
            rcf->sentinel_password.len = value[i].len - 18;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            rcf->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (rcf->db == NGX_ERROR) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rcf->prefix.data = value[i].data + 7;
            rcf->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            rcf->timeout = ngx_parse_time(&s, 0);
            if (rcf->timeout == (ngx_msec_t) NGX_ERROR || rcf->timeout == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "ack_timeout=", 12) == 0) {
            s.data = value[i].data + 12;
            s.len = value[i].len - 12;

            rcf->ack_timeout = ngx_parse_time(&s, 0);
            if (rcf->ack_timeout == (ngx_msec_t) NGX_ERROR
                || rcf->ack_timeout == 0)
            {
                goto invalid;
            }
            continue;
        }

        goto invalid;
    }

    if (rcf->sentinels && rcf->master.len == 0) {
        return "needs master= with sentinel=";
    }

    if (rcf->cluster && rcf->db != NGX_CONF_UNSET && rcf->db != 0) {
        return "cannot select a database (db=) in a cluster";
    }

    if (rcf->cluster && rcf->prefix.len
        && ngx_strlchr(rcf->prefix.data, rcf->prefix.data + rcf->prefix.len,
                       '{'))
    {
        /* its hash tag would put every key and channel on one master */
        return "cannot have a \"{\" in prefix= in a cluster";
    }

    rcf->enabled = 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * "ws_relay_history off;" or
 * "ws_relay_history size=N ttl=T [meta_ttl=T] [resume_unverified=on];"
 */

static char *
ngx_ws_relay_history(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ws_relay_loc_conf_t *wlcf = conf;

    ngx_str_t                    *value, s;
    ngx_int_t                     n;
    ngx_uint_t                    i;
    ngx_msec_t                   *ms;
    ngx_ws_relay_history_conf_t  *h;

    h = &wlcf->history;

    if (h->size != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        h->size = 0;
        return NGX_CONF_OK;
    }

    h->size = 100;
    h->ttl = 600000;
    h->meta_ttl = 86400000;
    h->unverified = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);

            /* a user's page of replay fits a reply of Redis */
            if (n <= 0 || n > 100000) {
                goto invalid;
            }

            h->size = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            ms = &h->ttl;
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

        } else if (ngx_strncmp(value[i].data, "meta_ttl=", 9) == 0) {
            ms = &h->meta_ttl;
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

        } else if (ngx_strcmp(value[i].data, "resume_unverified=on") == 0) {
            h->unverified = 1;
            continue;

        } else if (ngx_strcmp(value[i].data, "resume_unverified=off") == 0) {
            h->unverified = 0;
            continue;

        } else {
            goto invalid;
        }

        *ms = ngx_parse_time(&s, 0);
        if (*ms == (ngx_msec_t) NGX_ERROR || *ms == 0) {
            goto invalid;
        }
    }

    /* where the history stood is kept at least as long as the history */
    h->meta_ttl = ngx_max(h->meta_ttl, h->ttl);

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * "host[:port]" or "unix:/path" into ep: names resolved now, as hiredis
 * would resolve them while serving.
 */

static ngx_int_t
ngx_ws_relay_redis_address(ngx_conf_t *cf, ngx_str_t *addr,
    in_port_t default_port, ngx_ws_relay_redis_endpoint_t *ep)
{
    u_char     *p;
    size_t      len;
    ngx_url_t   u;

    if (ngx_strncmp(addr->data, "unix:", 5) == 0) {
        len = addr->len - 5;

        if (len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid Redis address \"%V\"", addr);
            return NGX_ERROR;
        }

        ep->unix_path.data = ngx_pnalloc(cf->pool, len + 1);
        if (ep->unix_path.data == NULL) {
            return NGX_ERROR;
        }

        ngx_cpystrn(ep->unix_path.data, addr->data + 5, len + 1);
        ep->unix_path.len = len;

        return NGX_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *addr;
    u.default_port = default_port;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in \"%V\" of \"ws_relay_redis\"",
                           u.err ? u.err : "an address that does not resolve",
                           addr);
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                        NGX_SOCKADDR_STRLEN, 0);
    p[len] = '\0';

    ep->host.data = p;
    ep->host.len = len;
    ep->port = u.port;

    return NGX_OK;
}


/* "ws_relay_user_id $variable [optional];" */

static char *
ngx_ws_relay_user_id(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ws_relay_loc_conf_t *wlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (wlcf->user_id) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "optional") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        wlcf->user_id_optional = 1;
    }

    wlcf->user_id = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (wlcf->user_id == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = wlcf->user_id;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "ws_relay_limit_rate 20r/s [burst=40];", "off", or r/m */

static char *
ngx_ws_relay_limit_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_ws_relay_loc_conf_t *wlcf = conf;

    u_char      *p;
    size_t       len;
    ngx_int_t    rate, scale, burst;
    ngx_str_t   *value;

    if (wlcf->limit_rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0 && cf->args->nelts == 2) {
        wlcf->limit_rate = 0;
        wlcf->limit_burst = 0;
        return NGX_CONF_OK;
    }

    len = value[1].len;
    p = value[1].data + len - 3;
    scale = 1;

    if (len > 3 && ngx_strncmp(p, "r/s", 3) == 0) {
        len -= 3;

    } else if (len > 3 && ngx_strncmp(p, "r/m", 3) == 0) {
        scale = 60;
        len -= 3;

    } else {
        goto invalid;
    }

    rate = ngx_atoi(value[1].data, len);
    if (rate <= 0) {
        goto invalid;
    }

    burst = 0;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "burst=", 6) != 0) {
            goto invalid;
        }

        burst = ngx_atoi(value[2].data + 6, value[2].len - 6);
        if (burst == NGX_ERROR) {
            goto invalid;
        }
    }

    wlcf->limit_rate = rate * 1000 / scale;
    wlcf->limit_burst = burst * 1000;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value in \"%V\": use N r/s or N r/m, and "
                       "burst=N", &cmd->name);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_ws_relay_postconfiguration(ngx_conf_t *cf)
{
    ngx_ws_relay_main_conf_t  *wmcf;

    wmcf = ngx_http_conf_get_module_main_conf(cf, ngx_ws_relay_module);

    ngx_ws_relay_history_init();

    if (!wmcf->used && !wmcf->redis.enabled) {
        return NGX_OK;
    }

    return ngx_ws_relay_shm_add(cf, wmcf);
}


static ngx_int_t
ngx_ws_relay_init_process(ngx_cycle_t *cycle)
{
    u_char                    *p;
    ngx_ws_relay_main_conf_t  *wmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    wmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_ws_relay_module);
    if (wmcf == NULL) {
        return NGX_OK;
    }

    ngx_ws_relay_worker.main_conf = wmcf;

    if (ngx_ws_relay_shm_init_worker(wmcf, cycle->log) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ws_relay_registry_init();
    ngx_ws_relay_delivery_init();

    /* unique across hosts and restarts: hostname, pid, start time */

    p = ngx_pnalloc(cycle->pool, cycle->hostname.len + 2 * NGX_INT_T_LEN + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_ws_relay_worker.node_id.data = p;
    ngx_ws_relay_worker.node_id.len = ngx_sprintf(p, "%V-%P-%xL",
                                                  &cycle->hostname, ngx_pid,
                                                  ngx_ws_relay_now_ms())
                                      - p;

    return ngx_ws_relay_bus_init_worker(cycle);
}


static void
ngx_ws_relay_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_ws_relay_worker.main_conf) {
        ngx_ws_relay_bus_exit_worker();
        ngx_ws_relay_shm_exit_worker();
    }
}


uint64_t
ngx_ws_relay_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}

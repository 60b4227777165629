
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/* what every target of the module's own code uses */


#ifndef _FUZZ_H_INCLUDED_
#define _FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


#define fuzz_assert(cond)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant broken: %s\n",                  \
                    __FILE__, __LINE__, #cond);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)


/* nesting as the module counts it: an object or array is one level */

static inline ngx_uint_t
fuzz_json_depth(json_t *json)
{
    size_t       i;
    json_t      *value;
    ngx_uint_t   d, max;
    const char  *key;

    if (!json_is_object(json) && !json_is_array(json)) {
        return 0;
    }

    max = 0;

    if (json_is_object(json)) {
        json_object_foreach(json, key, value) {
            d = fuzz_json_depth(value);
            max = ngx_max(max, d);
        }

    } else {
        json_array_foreach(json, i, value) {
            d = fuzz_json_depth(value);
            max = ngx_max(max, d);
        }
    }

    return max + 1;
}


#endif /* _FUZZ_H_INCLUDED_ */

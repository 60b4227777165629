/*
 * Just enough JSON to read the relay's replies: find a member of the
 * top-level object and return its raw value span.
 */

#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    JSON_NONE = 0,                /* not found, or not an object */
    JSON_STRING,                  /* span excludes the quotes, still escaped */
    JSON_NUMBER,
    JSON_OBJECT,                  /* span includes the braces */
    JSON_ARRAY,
    JSON_LITERAL                  /* true, false, null */
} json_type_t;

json_type_t json_get(const char *s, size_t n, const char *key,
    const char **val, size_t *vlen);

/* The member is a string equal to want. */
int json_str_eq(const char *s, size_t n, const char *key, const char *want);

/* The member is a non-negative integer (or a string holding one). */
int json_get_u64(const char *s, size_t n, const char *key, uint64_t *out);

/* Parses "<a>:<b>[:padding]" such as "17:123456789". */
int parse_u64_pair(const char *s, size_t n, uint64_t *a, uint64_t *b);

#endif

/*
 * The texts a hostile client sends in busy mode: JSON of a given size
 * that costs a server the most to read, valid or not.  No sockets here.
 */

#ifndef BOMB_H
#define BOMB_H

#include <stddef.h>

typedef enum {
    BOMB_CHAT = 0,        /* {"type":"chat","text":[0,0,...,0]}: valid */
    BOMB_DEEP,            /* [[[[...: nested arrays, never closed */
    BOMB_UNCLOSED,        /* {"type":"chat","text":[0,0,...: never closed */
    BOMB_KINDS
} bomb_kind_t;

extern const char *bomb_kind_names[BOMB_KINDS];

/* The shortest text of each kind. */
#define BOMB_MIN_SIZE  32

/*
 * Writes the text of a bomb of kind, exactly size bytes (BOMB_MIN_SIZE
 * or more), into buf.  Returns 0, or -1 when size is too small.
 */
int bomb_text(bomb_kind_t kind, char *buf, size_t size);

/*
 * Reads a comma-separated list of kind names ("chat,deep,unclosed") into
 * kinds (max at most).  Returns how many, or -1 for an unknown name, an
 * empty list or more than max.
 */
int bomb_kinds_parse(const char *list, bomb_kind_t *kinds, int max);

#endif

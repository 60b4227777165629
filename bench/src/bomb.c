/*
 * Bomb texts for busy mode.  See bomb.h.
 */

#include <string.h>

#include "bomb.h"

#define BOMB_CHAT_HEAD  "{\"type\":\"chat\",\"text\":["

const char *bomb_kind_names[BOMB_KINDS] = { "chat", "deep", "unclosed" };


int
bomb_text(bomb_kind_t kind, char *buf, size_t size)
{
    size_t  head = sizeof(BOMB_CHAT_HEAD) - 1, i;

    if (size < BOMB_MIN_SIZE || kind >= BOMB_KINDS) {
        return -1;
    }

    if (kind == BOMB_DEEP) {
        memset(buf, '[', size);
        return 0;
    }

    memcpy(buf, BOMB_CHAT_HEAD, head);

    /* "0,0,0,...": a number, then a comma, to the end */
    for (i = head; i < size; i++) {
        buf[i] = ((i - head) % 2) ? ',' : '0';
    }

    if (kind == BOMB_CHAT) {
        /* "...,0]}", or "...,0 ]}" to fill an odd byte */
        i = size - 2;
        buf[i] = ']';
        buf[i + 1] = '}';

        if ((i - head) % 2 == 0) {
            /* the byte before the ']' is a comma: a blank instead */
            buf[i - 1] = ' ';
        }
    }

    return 0;
}


int
bomb_kinds_parse(const char *list, bomb_kind_t *kinds, int max)
{
    const char  *p = list, *end;
    size_t       len;
    int          n = 0, k;

    for ( ;; ) {
        end = strchr(p, ',');
        len = end ? (size_t) (end - p) : strlen(p);

        for (k = 0; k < BOMB_KINDS; k++) {
            if (strlen(bomb_kind_names[k]) == len
                && memcmp(p, bomb_kind_names[k], len) == 0)
            {
                break;
            }
        }

        if (k == BOMB_KINDS || n == max) {
            return -1;
        }

        kinds[n++] = (bomb_kind_t) k;

        if (end == NULL) {
            return n;
        }
        p = end + 1;
    }
}

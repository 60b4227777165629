
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * hiredis's reader, fed with bytes of the input.  An array header
 * allocates its elements before they arrive: one that announces more
 * elements than the input has bytes could never be completed, and is
 * refused as the reader refuses what it cannot allocate (hiredis 0.14
 * takes counts up to INT_MAX).
 */


#ifndef _FUZZ_READER_H_INCLUDED_
#define _FUZZ_READER_H_INCLUDED_


#include "fuzz.h"
#include <hiredis/hiredis.h>


static redisReplyObjectFunctions   fuzz_reader_fn;
static void                     *(*fuzz_reader_create_array)(
                                     const redisReadTask *task,
                                     int elements);
static size_t                      fuzz_reader_limit;


static void *
fuzz_reader_array(const redisReadTask *task, int elements)
{
    if (elements > 0 && (size_t) elements > fuzz_reader_limit) {
        return NULL;
    }

    return fuzz_reader_create_array(task, elements);
}


static redisReader *
fuzz_reader_new(const u_char *p, size_t len)
{
    redisReader  *reader;

    reader = redisReaderCreate();
    fuzz_assert(reader != NULL);

    if (fuzz_reader_create_array == NULL) {
        fuzz_reader_fn = *reader->fn;
        fuzz_reader_create_array = fuzz_reader_fn.createArray;
        fuzz_reader_fn.createArray = fuzz_reader_array;
    }

    reader->fn = &fuzz_reader_fn;
    fuzz_reader_limit = len;

    fuzz_assert(redisReaderFeed(reader, (const char *) p, len) == REDIS_OK);

    return reader;
}


#endif /* _FUZZ_READER_H_INCLUDED_ */

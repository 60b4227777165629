
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * TAP for the unit tests: a test is a group of checks, "ok" when none
 * failed; the first failed checks of a test are printed as diagnostics.
 * tap_done() closes the output with "1..N" and "N passed, N failed" and
 * gives the exit status: 1 when a test failed.
 */


#ifndef _TAP_H_INCLUDED_
#define _TAP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define TEST_DIAG_MAX       10      /* failed checks printed per test */


#define check(cond, ...)  test_check((cond) ? 1 : 0, __LINE__, __VA_ARGS__)


/* a run longer than timeout seconds fails: a loop that never ends */
void tap_start(unsigned timeout);
int tap_done(void);

void test_begin(const char *name);
void test_end(void);
void test_check(int ok, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

void *test_alloc(size_t size);


#endif /* _TAP_H_INCLUDED_ */

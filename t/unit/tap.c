
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "tap.h"


static void tap_timeout(int signo);


static ngx_uint_t    test_number;
static ngx_uint_t    test_passed;
static ngx_uint_t    test_failed;
static ngx_uint_t    test_failed_checks;
static const char   *test_name;


void
tap_start(unsigned timeout)
{
    /* lines reach the pipe before a timeout cuts the run */
    setvbuf(stdout, NULL, _IOLBF, 0);

    signal(SIGALRM, tap_timeout);
    alarm(timeout);
}


int
tap_done(void)
{
    printf("1..%lu\n", (unsigned long) test_number);
    printf("%lu passed, %lu failed\n",
           (unsigned long) test_passed, (unsigned long) test_failed);

    return test_failed ? 1 : 0;
}


static void
tap_timeout(int signo)
{
    static const char  msg[] = "Bail out! timed out\n";

    (void) signo;

    if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {
        _exit(2);
    }

    _exit(1);
}


void
test_begin(const char *name)
{
    test_name = name;
    test_failed_checks = 0;
}


void
test_end(void)
{
    test_number++;

    if (test_failed_checks == 0) {
        test_passed++;
        printf("ok %lu - %s\n", (unsigned long) test_number, test_name);
        return;
    }

    test_failed++;

    if (test_failed_checks > TEST_DIAG_MAX) {
        printf("#   ... %lu more failed checks\n",
               (unsigned long) (test_failed_checks - TEST_DIAG_MAX));
    }

    printf("not ok %lu - %s\n", (unsigned long) test_number, test_name);
}


void
test_check(int ok, int line, const char *fmt, ...)
{
    va_list  args;

    if (ok) {
        return;
    }

    if (test_failed_checks++ >= TEST_DIAG_MAX) {
        return;
    }

    printf("#   %s, line %d: ", test_name, line);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");
}


void *
test_alloc(size_t size)
{
    void  *p;

    p = malloc(size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }

    return p;
}

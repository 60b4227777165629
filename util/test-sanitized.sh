#!/usr/bin/env bash
# Runs the Test::Nginx suites against nginx + the module (compiled in
# statically) built for memory checking by util/build-sanitized.sh:
#
#   util/test-sanitized.sh asan     [test files]   ASan + LeakSanitizer + UBSan
#   util/test-sanitized.sh valgrind [test files]   nginx under valgrind memcheck
#
# Without test files it runs every suite (prove -r t/). Ports and server
# root come from TEST_NGINX_SERVER_PORT (1984), TEST_NGINX_REDIS_PORT (6399)
# and TEST_NGINX_SERVROOT (t/servroot).
#
# asan: every sanitizer report fails the run. nginx's processes write
# their reports to their error logs (stderr) and to
# build/asan/reports/san.PID; the harness (TEST_NGINX_CHECK_SANITIZER) fails
# the block that produced one, and this script fails when any report file
# or the test output holds one. Leaks that nginx's own exit paths leave are
# suppressed by util/lsan.supp (nginx core functions only); UBSan findings
# of nginx core that are not ours by util/ubsan.supp.
# EXTRA_UBSAN_OPTIONS=halt_on_error=0 lets nginx go on after a UBSan
# report of the checks built recoverable (they still fail the run).
#
# valgrind: Test::Nginx's TEST_NGINX_USE_VALGRIND mode (daemon off, nginx
# restarted for every block); util/valgrind.supp holds what is not ours.
# Invalid reads/writes, uses of uninitialised values, bad frees and
# "definitely lost" leaks fail the run; they are listed with the block
# they followed. Slow: minutes per suite.

set -uo pipefail

flavour=${1:-asan}
shift || true

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

util/build-sanitized.sh "$flavour" || exit 1

out=$top/build/${BUILD_NAME:-$flavour}     # as util/build-sanitized.sh
reports=$out/reports
rm -rf "$reports"
mkdir -p "$reports"
chmod 1777 "$reports"           # workers may run as another user

if [ $# -gt 0 ]; then tests=("$@"); else tests=(-r t/); fi

export TEST_NGINX_BINARY=$out/sbin/nginx
export TEST_NGINX_LOAD_MODULES=         # the module is compiled in
export TEST_NGINX_SERVER_PORT=${TEST_NGINX_SERVER_PORT:-1984}
export TEST_NGINX_REDIS_PORT=${TEST_NGINX_REDIS_PORT:-6399}
export PERL5LIB=${PERL5LIB:+$PERL5LIB:}$top/t/lib

case $flavour in
asan)
    export TEST_NGINX_CHECK_SANITIZER=1
    # log_path in both: with ASan and UBSan in one runtime, UBSan's flags
    # (parsed at its first report) replace ASan's common flags.
    # EXTRA_ASAN_OPTIONS / EXTRA_UBSAN_OPTIONS are appended (later wins).
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:log_path=$reports/san${EXTRA_ASAN_OPTIONS:+:$EXTRA_ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$top/util/ubsan.supp:log_path=$reports/san${EXTRA_UBSAN_OPTIONS:+:$EXTRA_UBSAN_OPTIONS}"
    export LSAN_OPTIONS="suppressions=$top/util/lsan.supp:print_suppressions=0"
    ;;
valgrind)
    # nginx answers 10-50 times slower under valgrind
    export TEST_NGINX_TIMEOUT=${TEST_NGINX_TIMEOUT:-10}
    export TEST_NGINX_USE_VALGRIND="--tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=50 --suppressions=$top/util/valgrind.supp --gen-suppressions=all"
    ;;
*)
    echo "usage: $0 asan|valgrind [test files]" >&2
    exit 2
    ;;
esac

log=$out/prove.log
echo "test-sanitized: prove ${tests[*]} against $TEST_NGINX_BINARY ($flavour);" \
     "output in $log"

prove "${tests[@]}" 2> >(tee "$log" >&2)
rc=$?
wait

fail=0

if [ "$flavour" = asan ]; then
    # reports the harness may not have seen: processes that died before
    # nginx opened its error log, or that exited after the last check
    files=$(grep -lE '==[0-9]+==ERROR: |runtime error: ' "$reports"/san.* \
            2>/dev/null)
    if [ -n "$files" ]; then
        echo "test-sanitized: sanitizer reports in $(echo "$files" | wc -l)" \
             "files; the first ones:"
        for f in $(echo "$files" | head -3); do
            echo "--- $f"
            head -40 "$f"
        done
        fail=1
    fi
    # raw reports only: the harness's own "# ..." diagnostics quote them
    if grep -qE '^==[0-9]+==ERROR: |^[^#].*: runtime error: ' "$log"; then
        echo "test-sanitized: sanitizer reports in the test output ($log):"
        grep -E -A12 '^==[0-9]+==ERROR: |^[^#].*: runtime error: ' "$log" \
            | head -60
        fail=1
    fi
    # the blocks the harness failed for a report
    if grep -q ' - no sanitizer report ' "$log"; then
        echo "test-sanitized: sanitizer reports, by the block that produced them:"
        grep -E "^#   Failed test '.* - no sanitizer report " "$log" \
            | sed -e "s/^#   Failed test '//" -e "s/'\$//" | awk '!seen[$0]++'
        fail=1
    fi
else
    # valgrind writes "==PID== <error>"; the block names come before
    found=$(perl -ne '
        BEGIN { $err = qr/^==\d+== (?:Invalid (?:read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function .* has a fishy|.* definitely lost in loss record)/ }
        if (/^(t\/\S+\.t) TEST \d+/) { $block = $_; next }
        if ($_ =~ $err) { print "in: $block" unless $shown{$block}++; print }
    ' "$log")
    if [ -n "$found" ]; then
        echo "test-sanitized: valgrind errors (details in $log):"
        echo "$found"
        fail=1
    fi
fi

if [ $rc -ne 0 ]; then
    echo "test-sanitized: $flavour: tests failed (prove exit $rc)"
    exit 1
fi

if [ $fail -ne 0 ]; then
    echo "test-sanitized: $flavour: memory errors found"
    exit 1
fi

echo "test-sanitized: $flavour: all tests passed, no memory errors reported"

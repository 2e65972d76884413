#!/bin/sh
# Sanitizer build only: runs after every other test and fails on each
# ASan/UBSan/LSan report that the suite's processes wrote (the reports go
# to files, see Makefile.am, so that a test expecting a failure cannot hide
# one).  Each report is shown in this test's log.
. "$MSPT_SRCDIR/tests/tap.sh"
dir=${MSPT_SANITIZER_REPORTS:?}
n=0
for f in "$dir"/*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    # asan.<program>.<pid> or ubsan.<program>.<pid>
    what=$(grep -m1 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" | sed 's/^==[0-9]*==//')
    ok 1 "$(basename "$f"): ${what:-sanitizer report}"
    diag "$(head -n 60 "$f")"
done
[ $n -gt 0 ] || ok 0 "no sanitizer report from the suite's processes"
tap_done

# TAP helpers for shell tests: source it, call ok/run_mspt, end with tap_done.
tap_n=0
tap_fail=0
ok() { # ok CONDITION-EXIT-STATUS DESCRIPTION
    tap_n=$((tap_n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $tap_n - $2"
    else
        echo "not ok $tap_n - $2"
        tap_fail=$((tap_fail + 1))
    fi
}
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
tap_done() {
    echo "1..$tap_n"
    [ "$tap_fail" -eq 0 ]
}
# run_mspt ARGS...: runs the build tree's mspt; sets $rc, $out, $err
run_mspt() {
    "$MSPT_BUILDDIR/mspt" "$@" >"$tap_tmp/out" 2>"$tap_tmp/err"
    rc=$?
    out=$(cat "$tap_tmp/out")
    err=$(cat "$tap_tmp/err")
}
# expect_error RC PATTERN DESCRIPTION: exit code, one stderr line matching
expect_error() {
    want_rc=$1 pattern=$2 desc=$3
    lines=$(printf '%s' "$err" | grep -c '')
    [ "$rc" -eq "$want_rc" ] && [ "$lines" -eq 1 ] &&
        printf '%s' "$err" | grep -qF -- "$pattern"
    r=$?
    ok $r "$desc"
    [ $r -eq 0 ] || diag "rc=$rc (want $want_rc) stderr: $err"
}

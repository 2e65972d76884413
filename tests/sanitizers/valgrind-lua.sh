#!/bin/sh
# The Lua-facing tests under valgrind's memcheck: ASan does not see inside
# Debian's uninstrumented liblua (a write past the Lua stack is invisible to
# it).  Runs tests/test_config, test_cli.sh and test_hostile_config.sh of
# a plain build with every mspt process under memcheck; exits non-zero when
# a test fails or memcheck reports an error (the reports are printed).
# test_hostile_config.sh's time limits may not hold under memcheck: a
# "not ok" there with no memcheck report is its slowness.
#
#   tests/sanitizers/valgrind-lua.sh [BUILDDIR]     # default: .
set -u
build=$(cd "${1:-.}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$build/mspt" ] && [ -x "$build/tests/test_config" ] ||
    { echo "valgrind-lua.sh: $build has no built mspt and tests (make check first)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind-lua.sh: valgrind not found (Debian: valgrind)" >&2; exit 2; }
work=$(mktemp -d /tmp/mspt-valgrind-XXXXXX)
trap 'rm -rf "$work"' EXIT
vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
vg="$vg --show-leak-kinds=definite --suppressions=$src/tests/sanitizers/valgrind.supp"
vg="$vg --log-file=$work/vg.%p.log"

# test_cli.sh runs "$MSPT_BUILDDIR/mspt": give it a build directory of
# links whose mspt runs the real one under memcheck.
mkdir "$work/build"
for f in "$build"/* "$build"/.libs; do ln -s "$f" "$work/build/"; done
rm "$work/build/mspt"
printf '#!/bin/sh\nexec "%s/libtool" --mode=execute %s "%s/mspt" "$@"\n' \
    "$build" "$vg" "$build" >"$work/build/mspt"
chmod +x "$work/build/mspt"

status=0
export MSPT_SRCDIR="$src"
MSPT_BUILDDIR="$build" "$build/libtool" --mode=execute $vg "$build/tests/test_config" \
    >"$work/test_config.out" 2>&1 || { status=1; echo "test_config failed:"; grep -E '^(not ok|Bail)' "$work/test_config.out"; }
for t in test_cli test_hostile_config; do
    MSPT_BUILDDIR="$work/build" CC="${CC:-cc}" MAKE="${MAKE:-make}" sh "$src/tests/$t.sh" \
        >"$work/$t.out" 2>&1 || { status=1; echo "$t.sh failed:"; grep -E '^(not ok|Bail)' "$work/$t.out"; }
done
for log in "$work"/vg.*.log; do
    [ -s "$log" ] || continue
    status=1
    echo "== memcheck: $(basename "$log")"
    cat "$log"
done
for t in test_config test_cli test_hostile_config; do
    printf '%s: %s ok, %s not ok; ' $t "$(grep -c '^ok' "$work/$t.out")" "$(grep -c '^not ok' "$work/$t.out")"
done
echo "memcheck reports: $(find "$work" -name 'vg.*.log' -size +0 | wc -l)"
exit $status

#!/bin/sh
# A real install into a temporary root, and a third-party plugin built
# against the installed headers with pkg-config, loaded by path.
. "$MSPT_SRCDIR/tests/tap.sh"
if [ -n "${MSPT_SANITIZERS:-}" ]; then
    echo "1..0 # SKIP sanitizer build: an instrumented build is never installed (the plain build runs this test)"
    exit 0
fi
tap_tmp=$(mktemp -d /tmp/mspt-test-install-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
root="$tap_tmp/root"

${MAKE:-make} -C "$MSPT_BUILDDIR" install DESTDIR="$root" >"$tap_tmp/install.log" 2>&1
ok $? "make install DESTDIR=..."
prefix=$(sed -n 's/^prefix=//p' "$MSPT_BUILDDIR/mspt.pc")
libdir=$(sed -n 's/^libdir=//p' "$MSPT_BUILDDIR/mspt.pc" | sed "s|\${exec_prefix}|$prefix|")
includedir=$(sed -n 's/^includedir=//p' "$MSPT_BUILDDIR/mspt.pc" | sed "s|\${prefix}|$prefix|")
ok $([ -f "$root$includedir/mspt/mspt.h" ] && [ -f "$root$includedir/mspt/plugin.h" ] &&
     [ -f "$root$includedir/mspt/version.h" ]; echo $?) "public headers installed under include/mspt"
ok $([ -x "$root$prefix/bin/mspt" ] && [ -f "$root$libdir/pkgconfig/mspt.pc" ] &&
     ls "$root$libdir"/libmspt.so* >/dev/null 2>&1; echo $?) "program, library and mspt.pc installed"
ok $(ls "$root$prefix"/share/man/man1/mspt.1* "$root$prefix"/share/man/man7/mspt-plugin.7* >/dev/null 2>&1; echo $?) "man pages mspt(1) and mspt-plugin(7) installed"
ok $(test ! -e "$root$includedir/mspt/core" && ! ls "$root$includedir/mspt" | grep -q -v '\.h$'; echo $?) \
   "only public headers installed"

export PKG_CONFIG_PATH="$root$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root"
flags=$(pkg-config --cflags --libs mspt)
ok $? "pkg-config mspt ($flags)"
${CC:-cc} -std=c11 -Wall -Wextra -Werror -shared -fPIC -o "$tap_tmp/step.so" \
    "$MSPT_SRCDIR/examples/plugin/step_scheduler.c" $flags -lm 2>"$tap_tmp/cc.log"
ok $? "example plugin builds against the installed headers, warning-free"
[ -f "$tap_tmp/step.so" ] || diag "$(cat "$tap_tmp/cc.log")"

export LD_LIBRARY_PATH="$root$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mspt="$root$prefix/bin/mspt"
# The installed program looks in its configured plugin directory, which is
# under DESTDIR here: point it there, plus the test components.
export MSPT_PLUGIN_PATH="$root$libdir/mspt:$MSPT_BUILDDIR/tests/plugins/toy/.libs"
cat >"$tap_tmp/exp.lua" <<'LUA'
return {
  run_dir = require("mspt").script_dir .. "/run",
  model = { _target_ = "toy" },
  criterion = { _target_ = "toy_l1" },
  optimizer = { _target_ = "toy_sgd" },
  scheduler = { _target_ = "step.so", decay_t = 5 },
  data = { _target_ = "toy_ramp" },
  trainer = { batch_size = 4, max_epochs = 1, progress_bar = "off" },
  masking = { patch_size = { 1, 8 } },
}
LUA
"$mspt" run "$tap_tmp/exp.lua" >"$tap_tmp/out" 2>"$tap_tmp/err"
ok $? "installed mspt runs an experiment loading the plugin by path"
diag "$(cat "$tap_tmp/err")"
ok $(grep -q "_target_: $tap_tmp/step.so" "$tap_tmp/run/hparams.yaml" &&
     grep -q "decay_rate: 0.1" "$tap_tmp/run/hparams.yaml"; echo $?) \
   "the plugin's schema defaults reach hparams.yaml"
MSPT_PLUGIN_PATH="$MSPT_PLUGIN_PATH:$tap_tmp" "$mspt" plugins schedulers step >"$tap_tmp/out" 2>&1
ok $(grep -q "decay_rate *number *default 0.1" "$tap_tmp/out"; echo $?) \
   "found through MSPT_PLUGIN_PATH by name"
"$mspt" run "$tap_tmp/exp.lua" scheduler.decay_t=0 run_dir="$tap_tmp/run_err" >"$tap_tmp/out" 2>"$tap_tmp/err"
rc=$?
ok $([ $rc -eq 2 ] && grep -q "scheduler: decay_t must be >= 1" "$tap_tmp/err"; echo $?) \
   "the plugin's own validation error reaches the user"
"$mspt" --version >"$tap_tmp/out" 2>&1
ok $(grep -q "^mspt " "$tap_tmp/out"; echo $?) "installed mspt --version"
tap_done

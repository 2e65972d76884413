#!/bin/sh
# The mspt command: help, version, plugins, run, replay from hparams.yaml,
# and each configuration error as one line with exit status 2.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-cli-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
export MSPT_PLUGIN_PATH="$MSPT_BUILDDIR/tests/plugins/toy/.libs"

run_mspt --help
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "^Usage: mspt"; echo $?) "--help prints usage"
run_mspt --version
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "^BLAS: BLIS, kernel " &&
     echo "$out" | grep -q "^features:"; echo $?) "--version names the BLAS kernel and features"
ok $(echo "$out" | grep -q "^thin GEMMs: "; echo $?) "--version says what the thin GEMM kernels do"
ok $(env MSPT_THIN_GEMM=0 "$MSPT_BUILDDIR/mspt" --version | grep -q "^thin GEMMs: off"
     echo $?) "MSPT_THIN_GEMM=0 turns the thin kernels off"
ok $(env MSPT_THIN_GEMM=yes "$MSPT_BUILDDIR/mspt" --version 2>&1 >/dev/null |
     grep -q "^mspt: ignoring MSPT_THIN_GEMM=yes: it is 0 or 1$"
     echo $?) "a bad MSPT_THIN_GEMM is named on stderr and ignored"
for c in run plugins reconstruct plot prepare; do
    run_mspt $c --help
    ok $([ $rc -eq 0 ] && [ -z "$err" ] && echo "$out" | grep -q "^Usage: mspt $c"; echo $?) \
       "$c --help prints its usage on stdout"
    sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$MSPT_SRCDIR/doc/mspt.1" |
        grep -q "^\.B mspt $c\$"
    ok $? "mspt(1)'s SYNOPSIS lists $c"
done
run_mspt run "$tap_tmp/x.lua" -h
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "YAML flow syntax"; echo $?) \
   "run -h after the experiment, and it documents table overrides"
run_mspt frobnicate
expect_error 2 "unknown command 'frobnicate'" "unknown command: exit 2, one line"
run_mspt
expect_error 2 "missing command" "no command: exit 2"

run_mspt plugins
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "^encoders:" &&
     echo "$out" | grep -q "toy_sgd *toy plain SGD"; echo $?) "plugins lists every kind"
run_mspt plugins encoders toy
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "embed_dim *integer *default 8" &&
     echo "$out" | grep -q "patch_size *list of integers *default {2, 16}"; echo $?) \
   "plugins KIND NAME shows parameters, types and defaults"
run_mspt plugins encoders tyo
expect_error 2 "did you mean 'toy'" "plugins: unknown component with did-you-mean"
run_mspt plugins encoderz
expect_error 2 "did you mean 'encoders'" "plugins: unknown kind with did-you-mean"

cat >"$tap_tmp/exp.lua" <<'LUA'
local dir = require("mspt").script_dir
return {
  name = "cli",
  run_dir = dir .. "/run1",
  model = { _target_ = "toy", embed_dim = 8 },
  criterion = { _target_ = "losses.toy_l1" },
  optimizer = { _target_ = "toy_sgd", lr = 0.1 },
  scheduler = { _target_ = "toy_halving" },
  data = { { _target_ = "toy_ramp", windows = 8 }, { _target_ = "toy_ramp" } },
  trainer = { batch_size = 4, max_epochs = 2, progress_bar = "off", num_workers = 1 },
  masking = { patch_size = { 1, 8 } },
}
LUA
run_mspt run "$tap_tmp/exp.lua"
ok $([ $rc -eq 0 ] && [ -f "$tap_tmp/run1/hparams.yaml" ]; echo $?) "run writes hparams.yaml"
[ $rc -eq 0 ] || diag "$err"
ok $(grep -q "embed_dim: 8" "$tap_tmp/run1/hparams.yaml" &&
     grep -q "samples: 32" "$tap_tmp/run1/hparams.yaml"; echo $?) \
   "hparams.yaml holds given values and schema defaults"

# replay from YAML alone, with an override, into another directory
run_mspt run "$tap_tmp/run1/hparams.yaml" run_dir="$tap_tmp/run2" optimizer.lr=5e-4
ok $([ $rc -eq 0 ] && [ -f "$tap_tmp/run2/hparams.yaml" ]; echo $?) "replay from hparams.yaml"
[ $rc -eq 0 ] || diag "$err"
grep -v -e "run_dir" -e "lr:" "$tap_tmp/run1/hparams.yaml" > "$tap_tmp/a"
grep -v -e "run_dir" -e "lr:" "$tap_tmp/run2/hparams.yaml" > "$tap_tmp/b"
ok $(cmp -s "$tap_tmp/a" "$tap_tmp/b"; echo $?) "the replayed configuration is the same"
ok $(grep -q "lr: 0.0005" "$tap_tmp/run2/hparams.yaml"; echo $?) "override typed as a float"
run_mspt run "$tap_tmp/run2/hparams.yaml" run_dir="$tap_tmp/run3"
ok $([ $rc -eq 0 ] && cmp -s "$tap_tmp/run2/hparams.yaml" "$tap_tmp/run3/hparams.yaml" 2>/dev/null ||
     diff "$tap_tmp/run2/hparams.yaml" "$tap_tmp/run3/hparams.yaml" | grep -q '^[<>] run_dir' ; echo $?) \
   "a second replay reproduces the file"

run_mspt run "$tap_tmp/exp.lua" model._target_=tyo
expect_error 2 "model._target_: unknown encoder 'tyo' (did you mean 'toy'?)" "misspelled _target_"
run_mspt run "$tap_tmp/exp.lua" +model.embed_dimm=3
expect_error 2 "model.embed_dimm: unknown key (did you mean 'embed_dim'?)" "unknown key"
run_mspt run "$tap_tmp/exp.lua" model.label=4
expect_error 2 "model.label: expected a string, got integer 4" "wrongly typed value"
run_mspt run "$tap_tmp/exp.lua" optimizer.lr=fast
expect_error 2 "override 'optimizer.lr=fast': 'fast' is not a number" "bad override value"
run_mspt run "$tap_tmp/exp.lua" model.nope=3
expect_error 2 "override 'model.nope=3': no key 'model.nope'" "override of a missing key"
run_mspt run "$tap_tmp/exp.lua" +model.embed_dim=3
expect_error 2 "exists already" "+override of an existing key"
run_mspt run "$tap_tmp/exp.lua"
expect_error 2 "holds an earlier run" "an earlier run's directory is not overwritten"
run_mspt run "$tap_tmp/exp.lua" --resume trainer.max_epochs=3
ok $([ $rc -eq 0 ] && grep -q "^12,2," "$tap_tmp/run1/metrics.csv"; echo $?) \
   "--resume continues the run in place (epoch 3 logged)"
[ $rc -eq 0 ] || diag "$err"
run_mspt run "$tap_tmp/exp.lua" --frobnicate
expect_error 2 "unknown option '--frobnicate'" "unknown option"
run_mspt run "$tap_tmp/exp.lua" data.1.windows=0 run_dir="$tap_tmp/e"
expect_error 2 "data.1: windows, channels and samples must be >= 1" "component refuses a value, naming its path"
run_mspt run "$tap_tmp/exp.lua" model.channels=3 run_dir="$tap_tmp/e"
expect_error 2 "data: data windows are 4 x 32 but the toy encoder takes 3 x 32" \
   "data shape that does not fit the encoder names both shapes"
run_mspt run "$tap_tmp/exp.lua" model._target_=losses.toy_l1
expect_error 2 "model._target_: 'losses.toy_l1' is a loss, but model takes an encoder" "wrong kind for the slot"
run_mspt run "$tap_tmp/exp.lua" model._target_="$MSPT_BUILDDIR/tests/plugins/bad_abi/.libs/toy.so"
expect_error 2 "built for mspt plugin ABI 99, but this mspt has ABI 2 (loads 1-2)" "wrong ABI module"
run_mspt run "$tap_tmp/exp.lua" "~criterion"
expect_error 2 "criterion: missing" "missing slot"
run_mspt run "$tap_tmp/exp.lua" +seedd=3
expect_error 2 "seedd: unknown key (did you mean 'seed'?)" "unknown top-level key"
run_mspt run "$tap_tmp/exp.lua" notanoverride
expect_error 2 "'notanoverride' is not an override" "stray argument"
run_mspt run "$tap_tmp/nope.lua"
expect_error 2 "nope.lua" "missing experiment file"
printf 'return {\n model = \n' > "$tap_tmp/broken.lua"
run_mspt run "$tap_tmp/broken.lua"
expect_error 2 "broken.lua:3:" "Lua syntax error names file and line"
run_mspt run "$tap_tmp/exp.txt"
expect_error 2 "expected an experiment .lua or .yaml file" "unknown file type"

# overrides that add or remove a whole component slot
cat >"$tap_tmp/nosched.lua" <<'LUA'
local e = dofile(require("mspt").script_dir .. "/exp.lua")
e.scheduler = nil
return e
LUA
run_mspt run "$tap_tmp/nosched.lua" '+scheduler={_target_: toy_halving, every: 2}' \
    run_dir="$tap_tmp/addsched"
ok $([ $rc -eq 0 ] && [ -z "$err" ] &&
     grep -q "_target_: toy_halving" "$tap_tmp/addsched/hparams.yaml" &&
     grep -q "every: 2" "$tap_tmp/addsched/hparams.yaml"; echo $?) \
   "+scheduler={...} adds a scheduler to an experiment without one"
[ $rc -eq 0 ] || diag "rc=$rc $err"
run_mspt run "$tap_tmp/exp.lua" "~scheduler" run_dir="$tap_tmp/nosched" \
    trainer.log_every_n_steps=1 trainer.max_epochs=5
ok $([ $rc -eq 0 ] && [ -z "$err" ] && ! grep -q "^scheduler" "$tap_tmp/nosched/hparams.yaml" &&
     grep -q "^20,4,[0-9.e-]*,,,0.100000001," "$tap_tmp/nosched/metrics.csv"; echo $?) \
   "~scheduler removes the scheduler cleanly: constant lr"
[ $rc -eq 0 ] || diag "rc=$rc $err"
run_mspt run "$MSPT_SRCDIR/examples/quickstart.lua" "~scheduler" run_dir="$tap_tmp/qs" \
    trainer.max_steps=2 data.windows=40 trainer.progress_bar=off
ok $([ $rc -eq 0 ] && [ -z "$err" ]; echo $?) "the README's 'quickstart.lua ~scheduler' runs cleanly"
[ $rc -eq 0 ] || diag "rc=$rc $err"
run_mspt run "$tap_tmp/exp.lua" 'data.1={_target_: toy_ramp, windows: 4}' run_dir="$tap_tmp/data1"
ok $([ $rc -eq 0 ] && grep -q "windows: 4" "$tap_tmp/data1/hparams.yaml"; echo $?) \
   "data.1={...} replaces one dataset of the list"
[ $rc -eq 0 ] || diag "rc=$rc $err"

# no validation split: no val_loss printed, nothing but what is kept
run_mspt run "$tap_tmp/exp.lua" trainer.train_val_split=1.0 trainer.save_top_k=0 \
    run_dir="$tap_tmp/noval"
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "^epoch 2: train_loss [0-9.]* (" &&
     ! echo "$out" | grep -qi "nan"; echo $?) "train_val_split = 1: no 'val_loss nan' printed"
[ $rc -eq 0 ] || diag "rc=$rc $err"
run_mspt run "$tap_tmp/exp.lua" trainer.train_val_split=1.0 run_dir="$tap_tmp/noval2"
expect_error 2 "trainer.monitor: val_loss, but there is no validation" \
    "monitoring val_loss without validation is a configuration error"
ok $([ ! -e "$tap_tmp/noval2" ]; echo $?) "... leaving no run directory"
# data errors are input errors: exit 2, nothing written
printf 'not an EDF file' >"$tap_tmp/bad.edf"
run_mspt run "$tap_tmp/exp.lua" 'data=[{_target_: edf, path: bad.edf}]' run_dir="$tap_tmp/baddata"
expect_error 2 "bad.edf" "an unreadable data file: exit 2 naming it"
ok $([ ! -e "$tap_tmp/baddata" ]; echo $?) "... leaving no run directory"
run_mspt run "$tap_tmp/exp.lua" 'data=[{_target_: edf, path: nothere.edf}]' run_dir="$tap_tmp/baddata"
expect_error 2 "nothere.edf" "a missing data file: exit 2 naming it"
run_mspt run "$tap_tmp/exp.lua" 'data={_target_: edf, path: nothere.edf}' run_dir="$tap_tmp/baddata"
expect_error 2 "override 'data={_target_: edf, path: nothere.edf}': expected a list like the value it replaces" \
    "a YAML table for a list is refused, not read as a Lua list"

# training guards and Lua-function schedulers
run_mspt run "$tap_tmp/exp.lua" run_dir="$tap_tmp/nan" optimizer.lr=1e38 criterion._target_=mse
ok $([ $rc -eq 1 ] && printf '%s' "$err" | grep -q "step 1 (epoch 1, batch 2): the loss is not finite; no checkpoint was written yet" &&
     [ "$(printf '%s' "$err" | grep -c '')" -eq 1 ]; echo $?) "a diverging run stops with exit 1 naming the step"
diag "$err"
cat >"$tap_tmp/fn.lua" <<'LUA'
local e = dofile(require("mspt").script_dir .. "/exp.lua")
e.run_dir = require("mspt").script_dir .. "/fn"
e.scheduler = function(step, epoch, base_lr) return base_lr / (1 + step) end
e.trainer.log_every_n_steps = 1
return e
LUA
run_mspt run "$tap_tmp/fn.lua"
ok $([ $rc -eq 0 ] && grep -q "^3,0,.*,0.0333333351," "$tap_tmp/fn/metrics.csv"; echo $?) \
   "a Lua function scheduler sets the lr (step 3: 0.1/3)"
[ $rc -eq 0 ] || diag "$err"
ok $(grep -q '^scheduler: !lua "function at' "$tap_tmp/fn/hparams.yaml"; echo $?) \
   "hparams.yaml records the function's origin"
run_mspt run "$tap_tmp/fn/hparams.yaml" run_dir="$tap_tmp/fn2"
expect_error 2 "is a Lua function, which YAML cannot carry" "replaying a Lua-function scheduler from YAML is refused"
sed 's|return base_lr / (1 + step)|return "fast"|; s|/fn"|/fn3"|' "$tap_tmp/fn.lua" >"$tap_tmp/fn3.lua"
run_mspt run "$tap_tmp/fn3.lua"
expect_error 2 "returned a non-number for step 0" "a scheduler function returning garbage"

# stray modules on the plugin search path: warned once, fatal only when used
mkdir "$tap_tmp/stray"
cp "$MSPT_BUILDDIR/tests/plugins/.libs/not_a_plugin.so" "$tap_tmp/stray/libstray.so"
MSPT_PLUGIN_PATH="$tap_tmp/stray:$MSPT_PLUGIN_PATH:$tap_tmp/stray" \
    run_mspt run "$tap_tmp/exp.lua" run_dir="$tap_tmp/stray_run"
ok $([ $rc -eq 0 ] && [ "$(printf '%s' "$err" | grep -c '')" -eq 1 ] &&
     printf '%s' "$err" | grep -q "^mspt: warning: .*stray/libstray.so: not an mspt plugin"
     echo $?) "a stray .so on the plugin path: one warning naming it, and the run goes on"
[ $rc -eq 0 ] || diag "rc=$rc $err"
cp "$MSPT_BUILDDIR/tests/plugins/bad_abi/.libs/toy.so" "$tap_tmp/stray/old.so"
MSPT_PLUGIN_PATH="$tap_tmp/stray:$MSPT_PLUGIN_PATH" run_mspt run "$tap_tmp/exp.lua" \
    run_dir="$tap_tmp/stray_run2"
expect_error 2 "model._target_: encoder 'toy': the module $tap_tmp/stray/old.so that would provide it was skipped" \
    "an old-ABI module providing a component the experiment names: exit 2 naming it"
MSPT_PLUGIN_PATH="$tap_tmp/stray:$MSPT_PLUGIN_PATH" run_mspt plugins
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "toy_sgd" &&
     [ "$(printf '%s' "$err" | grep -c 'warning')" -eq 2 ]; echo $?) \
   "plugins lists what loads and warns of what does not"
run_mspt plugins encoders "$MSPT_BUILDDIR/tests/plugins/toy/.libs/toy.so"
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "^encoders.toy$" &&
     echo "$out" | grep -q "embed_dim *integer *default 8" && ! echo "$out" | grep -q toy_sgd
     echo $?) "plugins KIND MODULE.so shows the module's components of that kind"
run_mspt plugins "$MSPT_BUILDDIR/tests/plugins/toy/.libs/toy.so:toy_sgd"
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "^optimizers.toy_sgd$" &&
     [ "$(echo "$out" | grep -c '^[a-z]*\.')" -eq 1 ]; echo $?) "plugins MODULE.so:NAME shows that one"
run_mspt plugins schedulers "$tap_tmp/stray/libstray.so"
expect_error 2 "libstray.so: not an mspt plugin" "plugins of a module that is no plugin: exit 2"

# plugin bugs named when the model is built
buggy="$MSPT_BUILDDIR/tests/plugins/buggy/.libs/toy.so"
run_mspt run "$tap_tmp/exp.lua" model._target_="$buggy" model.label=dup run_dir="$tap_tmp/bug1"
expect_error 2 "model: encoders.toy: parameter 'gain': the name is used twice" \
    "a parameter name used twice is named when the model is built"
ok $([ ! -f "$tap_tmp/bug1/metrics.csv" ]; echo $?) "... before training starts"
run_mspt run "$tap_tmp/exp.lua" model._target_="$buggy" model.label=undeclared run_dir="$tap_tmp/bug2"
expect_error 2 "model.samplez: encoders.toy reads this key but does not declare it" \
    "reading a key the schema does not declare is an error naming it"
run_mspt reconstruct "$tap_tmp/exp.lua" model._target_="$buggy" model.label=dup \
    --weights "$tap_tmp/run1/checkpoints/last.safetensors" --windows 2 --out "$tap_tmp/bug.safetensors"
expect_error 2 "parameter 'gain': the name is used twice" "reconstruct names it too"

# mspt-plugin(7)'s minimal encoder, as printed, builds and trains
{
    printf '#include <stdlib.h>\n#include <mspt/mspt.h>\n'
    sed -n '/^typedef struct { int T; mspt_tensor/,/^\.RE$/p' "$MSPT_SRCDIR/doc/mspt-plugin.7" |
        grep -v '^\.RE$' | sed 's/\\-/-/g; s/\\(mu/*/g'
} >"$tap_tmp/minimal.c"
${CC:-cc} -std=c11 -Wall -Werror -Wno-unused-parameter -shared -fPIC -o "$tap_tmp/minimal.so" \
    -I"$MSPT_SRCDIR/include" -I"$MSPT_BUILDDIR/include" "$tap_tmp/minimal.c" 2>"$tap_tmp/cc.log"
ok $? "mspt-plugin(7)'s minimal encoder compiles"
[ -f "$tap_tmp/minimal.so" ] || diag "$(cat "$tap_tmp/cc.log")"
run_mspt run "$tap_tmp/exp.lua" "model={_target_: $tap_tmp/minimal.so, samples: 32}" \
    run_dir="$tap_tmp/minimal" trainer.max_epochs=1
ok $([ $rc -eq 0 ] && [ -z "$err" ]; echo $?) "... and trains, reading only keys it declares"
[ $rc -eq 0 ] || diag "rc=$rc $err"

# a module given by path in _target_ (relative to the experiment)
cp "$MSPT_BUILDDIR/tests/plugins/toy/.libs/toy.so" "$tap_tmp/mine.so"
MSPT_PLUGIN_PATH= run_mspt run "$tap_tmp/exp.lua" model._target_=mine.so \
    criterion._target_=mine.so optimizer._target_=mine.so scheduler._target_=mine.so \
    data.0._target_=mine.so data.1._target_=mine.so run_dir="$tap_tmp/run4"
ok $([ $rc -eq 0 ] && grep -q "_target_: $tap_tmp/mine.so" "$tap_tmp/run4/hparams.yaml"; echo $?) \
   "_target_ as a module path, recorded absolute"
[ $rc -eq 0 ] || diag "$err"
MSPT_PLUGIN_PATH= run_mspt run "$tap_tmp/exp.lua" model._target_=mine.so:nothere
expect_error 2 "registers no component of that name" "path.so:name with a wrong name"

tap_done

#!/bin/sh
# Hostile and merely unusual configuration: each case once crashed, hung or
# was silently misread (issue 15).  Every one must end, fast, in one line on
# stderr naming the key, file or value, with exit status 2.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-hostile-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
export MSPT_PLUGIN_PATH="$MSPT_BUILDDIR/tests/plugins/toy/.libs"
# run_mspt under a time limit: a hang is a failure, not a stuck suite
run_limited() { # SECONDS ARGS...
    limit=$1
    shift
    timeout -s KILL "$limit" "$MSPT_BUILDDIR/mspt" "$@" >"$tap_tmp/out" 2>"$tap_tmp/err"
    rc=$?
    out=$(cat "$tap_tmp/out")
    err=$(head -c 2000 "$tap_tmp/err")
}
# run_exp ARGS...: the YAML experiment in a run directory of its own (a
# run_dir= among ARGS comes later and wins)
nexp=0
run_exp() {
    nexp=$((nexp + 1))
    run_limited 30 run "$tap_tmp/exp.yaml" run_dir="$tap_tmp/r$nexp" "$@"
}
# repeat STRING N: STRING N times, no newline
repeat() { awk -v s="$1" -v n="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%s", s }'; }

cat >"$tap_tmp/exp.yaml" <<YAML
name: hostile
run_dir: $tap_tmp/run
model: {_target_: toy, embed_dim: 8}
criterion: {_target_: losses.toy_l1}
optimizer: {_target_: toy_sgd, lr: 0.1}
data: [{_target_: toy_ramp, windows: 8}]
trainer: {batch_size: 4, max_epochs: 1, progress_bar: "off", num_workers: 0, save_top_k: 0, train_val_split: 1.0}
masking: {patch_size: [1, 8]}
YAML
base() { sed "s|^run_dir: .*|run_dir: $tap_tmp/$1|" "$tap_tmp/exp.yaml"; }

# ---- YAML -------------------------------------------------------------------
{
    base bomb
    echo 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    p=a
    for l in b c d e f g h i; do
        printf '%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n' $l $l $p $p $p $p $p $p $p $p $p
        p=$l
    done
} >"$tap_tmp/bomb.yaml"
run_limited 20 run "$tap_tmp/bomb.yaml"
expect_error 2 "bomb.yaml" "an alias bomb (billion laughs) is refused"
ok $(printf '%s' "$err" | grep -q "alias"; echo $?) "... naming the alias expansion"

{ base flow; printf 'deep: '; repeat '[' 100000; repeat ']' 100000; echo; } >"$tap_tmp/flow.yaml"
start=$(date +%s)
run_limited 20 run "$tap_tmp/flow.yaml"
took=$(($(date +%s) - start))
expect_error 2 "flow.yaml:" "lists nested 100,000 deep: an error naming the file"
ok $(printf '%s' "$err" | grep -q "nested deeper than 64"; echo $?) "... saying the depth limit"
ok $([ $took -le 5 ]; echo $?) "... fast (${took} s)"
{ base flowmap; printf 'deep: '; repeat '{a: ' 100000; printf '1'; repeat '}' 100000; echo; } >"$tap_tmp/flowmap.yaml"
run_limited 20 run "$tap_tmp/flowmap.yaml"
expect_error 2 "nested deeper than 64" "tables nested 100,000 deep: an error"
{ base unclosed; printf 'deep: '; repeat '[' 200000; echo; } >"$tap_tmp/unclosed.yaml"
run_limited 20 run "$tap_tmp/unclosed.yaml"
expect_error 2 "unclosed.yaml:" "200,000 unclosed brackets: an error"

{ base threads; echo 'threads: 99999999999'; } >"$tap_tmp/threads.yaml"
run_limited 20 run "$tap_tmp/threads.yaml"
expect_error 2 "threads: 99999999999" "threads: 99999999999 in YAML is refused, naming it"
{ base self; echo 'a: &x [1, *x]'; } >"$tap_tmp/self.yaml"
run_limited 20 run "$tap_tmp/self.yaml"
expect_error 2 "self.yaml:" "an alias inside its own anchor is refused"
{ base bigmap; echo 'big:'; awk 'BEGIN { for (i = 0; i < 200000; i++) printf "  k%d: %d\n", i, i }'; } >"$tap_tmp/bigmap.yaml"
start=$(date +%s)
run_limited 30 run "$tap_tmp/bigmap.yaml"
took=$(($(date +%s) - start))
expect_error 2 "big: unknown key" "a YAML table of 200,000 keys is read"
ok $([ $took -le 10 ]; echo $?) "... fast (${took} s)"

# ---- threads ------------------------------------------------------------------
for n in 100000 16384 4096; do
    run_exp threads=$n
    expect_error 2 "threads: $n is more than" "threads=$n is refused with the bound"
done
run_exp threads=-1
expect_error 2 "threads: must be >= 0" "negative threads refused"

# ---- core sections that are not tables ------------------------------------------
for sec in trainer masking plots input_normalization; do
    { base "sec_$sec" | grep -v "^$sec:"; echo "$sec: x"; } >"$tap_tmp/sec_$sec.yaml"
    run_limited 20 run "$tap_tmp/sec_$sec.yaml"
    expect_error 2 "$sec: expected a table, got string" "$sec: \"x\" is a configuration error naming the type"
    ok $([ ! -e "$tap_tmp/sec_$sec" ]; echo $?) "... and nothing trains"
done
cat >"$tap_tmp/sec.lua" <<LUA
return { run_dir = "$tap_tmp/sec_lua", trainer = "x",
  model = { _target_ = "toy" }, criterion = { _target_ = "toy_l1" },
  optimizer = { _target_ = "toy_sgd", lr = 0.1 }, data = { { _target_ = "toy_ramp" } } }
LUA
run_limited 20 run "$tap_tmp/sec.lua"
expect_error 2 "trainer: expected a table, got string" "Lua trainer = \"x\" is refused"

# ---- integers out of range ----------------------------------------------------------
run_exp "masking.patch_size=[1, 4294967297]"
expect_error 2 "masking.patch_size[2]: 4294967297 is out of range" "patch_size 4294967297 is refused, not read as 1"
run_exp model.embed_dim=4294967297
expect_error 2 "model.embed_dim: 4294967297 is out of range" "a plugin's integer out of range is refused"
run_exp trainer.max_epochs=-2147483649
expect_error 2 "trainer.max_epochs: -2147483649 is out of range" "a negative integer out of range is refused"
run_exp seed=99999999999 run_dir="$tap_tmp/seed"
ok $([ $rc -eq 0 ] && grep -q "^seed: 99999999999$" "$tap_tmp/seed/hparams.yaml"; echo $?) \
   "a seed takes any 64-bit integer"
[ $rc -eq 0 ] || diag "rc=$rc $err"

# ---- overrides past the 256th -----------------------------------------------------------
set --
i=0
while [ $i -lt 300 ]; do set -- "$@" seed=$i; i=$((i + 1)); done
run_exp "$@" +seedd=3
expect_error 2 "seedd: unknown key" "the 301st override is applied, not dropped"
run_exp "$@" run_dir="$tap_tmp/many"
ok $([ $rc -eq 0 ] && grep -q "^seed: 299$" "$tap_tmp/many/hparams.yaml"; echo $?) \
   "300 overrides and a run_dir= after them: all applied"
[ $rc -eq 0 ] || diag "rc=$rc $err"

# ---- Lua ---------------------------------------------------------------------------------
cat >"$tap_tmp/common.lua" <<LUA
local M = {}
function M.exp(dir)
  return { run_dir = "$tap_tmp/" .. dir,
    model = { _target_ = "toy" }, criterion = { _target_ = "toy_l1" },
    optimizer = { _target_ = "toy_sgd", lr = 0.1 }, data = { { _target_ = "toy_ramp" } },
    trainer = { max_epochs = 1, progress_bar = "off", num_workers = 0, save_top_k = 0,
                train_val_split = 1.0 } }
end
function M.deep(n, leaf)
  local t = leaf or 1
  for i = 1, n do t = { a = t } end
  return t
end
return M
LUA
lua_case() { # NAME BODY: a script whose experiment is e
    printf 'local c = require("common")\nlocal mspt = require("mspt")\nlocal e = c.exp("%s")\n%s\nreturn e\n' \
        "$1" "$2" >"$tap_tmp/$1.lua"
    run_limited 30 run "$tap_tmp/$1.lua"
}
lua_case deep60 'e.extra = c.deep(60)'
expect_error 2 "extra: unknown key" "a table nested 60 deep converts (it is then an unknown key)"
lua_case deep60m 'e.model.extra = c.deep(60)'
expect_error 2 "model.extra: unknown key" "... anywhere in the experiment"
lua_case deep100 'e.extra = c.deep(100)'
expect_error 2 "extra.a.a.a" "a table nested 100 deep: an error naming the key path"
ok $(printf '%s' "$err" | grep -q "nested deeper than 64"; echo $?) "... and the limit"
lua_case cycle 'e.model.self = e.model'
expect_error 2 "model.self: the table contains itself" "a table containing itself is named as a cycle"
lua_case merge8 'local m = mspt.merge(c.deep(8), c.deep(8, {b = 2}), c.deep(40), c.deep(40, {b = 3}))
local t = m; for i = 1, 40 do t = t.a end
assert(t.b == 3, "merge lost the deep value")
e.extra = 1'
expect_error 2 "extra: unknown key" "mspt.merge of tables nested 8 and 40 deep merges"
lua_case merge100 'e.extra = mspt.merge(c.deep(100), c.deep(100))'
expect_error 2 "nested deeper than 64" "mspt.merge of tables nested 100 deep: an error"
ok $(printf '%s' "$err" | grep -q "a.a.a.a"; echo $?) "... naming the key path"
lua_case mergecycle 'local t = {x = 1}; t.me = t; e.extra = mspt.merge({x = 0}, t)'
expect_error 2 "mspt.merge: me: the table contains itself" "mspt.merge of a table containing itself returns an error"
lua_case mergecycle2 'local t = {x = {y = 1}}; t.x.up = t; e.extra = mspt.merge(t, t)'
expect_error 2 "the table contains itself" "mspt.merge(t, t) with a cycle under a key too"
{ printf 'deep: '; repeat '{a: ' 60; printf '1'; repeat '}' 60; echo; } >"$tap_tmp/deep60.yaml"
lua_case loadyaml60 'e.extra = mspt.load_yaml("deep60.yaml")'
expect_error 2 "extra: unknown key" "mspt.load_yaml of YAML nested 60 deep"
lua_case loadyamldeep 'e.extra = mspt.load_yaml("flow.yaml")'
expect_error 2 "nested deeper than 64" "mspt.load_yaml of YAML nested 100,000 deep: an error"
lua_case dag 'local t = {1}; for i = 1, 40 do t = {a = t, b = t} end; e.extra = t'
expect_error 2 "expands to more than 1000000 values" "a Lua table shared 2^40 times over is refused, not expanded"
lua_case errtable 'error({code = 1})'
expect_error 2 "a table value (not a string)" "error({code = 1}) says a table was raised"
ok $(printf '%s' "$err" | grep -q "code = 1" && ! printf '%s' "$err" | grep -q "(null)"
     echo $?) "... and shows its fields"
lua_case errnil 'error(nil)'
expect_error 2 "errnil.lua: the script raised nil" "error(nil) is named"
lua_case errnum 'error(42)'
expect_error 2 "the number 42" "error(42) is named"
lua_case big 'local t = {}; for i = 1, 200000 do t["k" .. i] = i end; e.big = t'
start=$(date +%s)
lua_case big 'local t = {}; for i = 1, 200000 do t["k" .. i] = i end; e.big = t'
took=$(($(date +%s) - start))
expect_error 2 "big: unknown key" "a Lua table of 200,000 keys converts"
ok $([ $took -le 10 ]; echo $?) "... fast (${took} s)"

tap_done

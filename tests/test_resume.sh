#!/bin/sh
# Kill and resume: a run stopped after epoch 1 and resumed ends with the same
# checkpoint, bit for bit, as an uninterrupted run; a process killed at
# random moments (also while writing a checkpoint) always leaves a loadable
# last checkpoint.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-resume-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
unset MSPT_PLUGIN_PATH

cat >"$tap_tmp/exp.lua" <<'LUA'
return {
  name = "resume", seed = 7, threads = 2,
  model = { _target_ = "femba", num_channels = 4, seq_length = 64,
            patch_size = { 2, 8 }, embed_dim = 4, num_blocks = 1, exp = 2,
            kernel_dec = { 3, 3 } },
  criterion = { _target_ = "smooth_l1" },
  optimizer = { _target_ = "adamw", lr = 1e-3 },
  scheduler = { _target_ = "cosine", warmup_epochs = 1 },
  data = { _target_ = "synthetic", windows = 40, channels = 4, samples = 64 },
  trainer = { batch_size = 4, max_epochs = 3, progress_bar = "off",
              gradient_clip_val = 1.0, accumulate_grad_batches = 2 },
  masking = { patch_size = { 1, 8 }, masking_ratio = 0.5 },
  input_normalization = { normalize = true },
}
LUA
run_mspt run "$tap_tmp/exp.lua" run_dir="$tap_tmp/full"
ok $rc "uninterrupted 3-epoch run"
[ $rc -eq 0 ] || diag "$err"
run_mspt run "$tap_tmp/exp.lua" run_dir="$tap_tmp/split" trainer.max_epochs=1
ok $rc "the same run stopped after epoch 1"
run_mspt run "$tap_tmp/exp.lua" run_dir="$tap_tmp/split" --resume
ok $rc "resumed to epoch 3"
[ $rc -eq 0 ] || diag "$err"
ok $(cmp -s "$tap_tmp/full/checkpoints/last.safetensors" \
           "$tap_tmp/split/checkpoints/last.safetensors"; echo $?) \
   "final checkpoints are bit-identical (weights, optimizer state, RNG)"
# (the samples/s column is a timing, the rest must match)
cut -d, -f1-6 "$tap_tmp/full/metrics.csv" >"$tap_tmp/m1"
cut -d, -f1-6 "$tap_tmp/split/metrics.csv" >"$tap_tmp/m2"
ok $(cmp -s "$tap_tmp/m1" "$tap_tmp/m2"; echo $?) \
   "metrics.csv of the resumed run equals the uninterrupted one"

# stop on max_steps mid-epoch, then resume without the limit (the schedule
# length is pinned: by default it follows max_steps)
run_mspt run "$tap_tmp/exp.lua" run_dir="$tap_tmp/steps" trainer.max_steps=7 \
    scheduler.t_initial=12
ok $rc "run stopped mid-epoch by max_steps"
run_mspt run "$tap_tmp/exp.lua" run_dir="$tap_tmp/steps" --resume scheduler.t_initial=12
ok $([ $rc -eq 0 ] && cmp -s "$tap_tmp/full/checkpoints/last.safetensors" \
                             "$tap_tmp/steps/checkpoints/last.safetensors"; echo $?) \
   "resumed mid-epoch, it still ends bit-identical"

# top-k: save_top_k = 2 keeps two scored checkpoints besides last
n=$(ls "$tap_tmp/full/checkpoints" | grep -c '^epoch=')
ok $([ "$n" -eq 1 ]; echo $?) "save_top_k = 1 keeps one best checkpoint ($n)"

# SIGKILL at random moments: last.safetensors must always stay loadable
cat >"$tap_tmp/kill.lua" <<'LUA'
local e = dofile(require("mspt").script_dir .. "/exp.lua")
e.trainer.max_epochs = 1000
e.trainer.limit_val_batches = 1
e.data.windows = 12
return e
LUA
survived=0
for delay in 0 0.05 0.1 0.15 0.2 0.3; do
    rm -rf "$tap_tmp/kill"
    "$MSPT_BUILDDIR/mspt" run "$tap_tmp/kill.lua" run_dir="$tap_tmp/kill" >/dev/null 2>&1 &
    pid=$!
    last="$tap_tmp/kill/checkpoints/last.safetensors"
    # wait (at most 60 s) for the first checkpoint, then kill a moment later:
    # at a random point of later epochs, saves included
    tries=0
    while [ ! -f "$last" ] && [ $tries -lt 600 ] && kill -0 $pid 2>/dev/null; do
        sleep 0.1
        tries=$((tries + 1))
    done
    sleep $delay
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ -f "$last" ] || continue
    rm -f "$tap_tmp/kill/checkpoints/"*.tmp.*
    "$MSPT_BUILDDIR/mspt" run "$tap_tmp/kill.lua" run_dir="$tap_tmp/kill" --resume \
        trainer.max_steps=1 >/dev/null 2>"$tap_tmp/kill.err"
    rc=$?
    # resuming loads the checkpoint; a max_steps already reached ends at once
    if [ $rc -ne 0 ]; then
        diag "delay $delay: $(cat "$tap_tmp/kill.err")"
        survived=-100
    fi
    survived=$((survived + 1))
done
ok $([ $survived -eq 6 ]; echo $?) "after SIGKILLs the last checkpoint always loads ($survived kills checked)"
tap_done

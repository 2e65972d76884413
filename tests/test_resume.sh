#!/bin/sh
# Kill and resume: a run stopped after epoch 1 and resumed ends with the same
# checkpoint, bit for bit, as an uninterrupted run; so does a run killed 20
# times at random moments (also while writing a checkpoint) and resumed
# each time, leaving no temporary file; a full disk during a save stops the
# run and keeps the previous checkpoint.
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

# Twenty SIGKILLs at random moments (saves included), each followed by a
# resume from whatever last checkpoint there is (a fresh start before the
# first): the run ends bit-identical to an uninterrupted one, and the
# temporary files of killed saves are gone (each start removes them).
cat >"$tap_tmp/kill.lua" <<'LUA'
local e = dofile(require("mspt").script_dir .. "/exp.lua")
e.trainer.max_epochs = 16
e.trainer.limit_val_batches = 1
e.data.windows = 12
e.plots = { samples = { 0 } }
return e
LUA
t0=$(date +%s%N)
run_mspt run "$tap_tmp/kill.lua" run_dir="$tap_tmp/calm"
calm_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok $rc "uninterrupted 16-epoch run"
# Delays scale with this machine's speed: up to 1/4 of the calm run (four
# epochs), so kills land in epochs and in saves alike.  A start that runs
# to the end by itself closes a cycle: its result is checked against the
# calm run and a new cycle starts afresh, until 20 kills.
seed=$(( $$ + $(date +%s) ))
delays=$(awk -v s=$seed -v c=$calm_ms 'BEGIN { srand(s); for (i = 0; i < 400; i++) printf "%.3f\n", 0.01 + rand() * c / 4000 }')
last="$tap_tmp/kill/checkpoints/last.safetensors"
kills=0 removed=0 failed=0 cycles=0 mismatch=0
cut -d, -f1-6 "$tap_tmp/calm/metrics.csv" >"$tap_tmp/m1"
for delay in $delays; do
    [ $kills -lt 20 ] || break
    resume=
    [ -f "$last" ] && resume=--resume
    "$MSPT_BUILDDIR/mspt" run "$tap_tmp/kill.lua" run_dir="$tap_tmp/kill" $resume \
        >"$tap_tmp/kill.out" 2>"$tap_tmp/kill.err" &
    pid=$!
    sleep $delay
    if kill -9 $pid 2>/dev/null; then
        kills=$((kills + 1))
    fi
    wait $pid 2>/dev/null
    rc=$?
    # a start that ended by itself before the kill must have succeeded
    if [ $rc -ne 137 ] && [ $rc -ne 0 ]; then
        failed=$((failed + 1))
        diag "delay $delay: exit $rc: $(cat "$tap_tmp/kill.err")"
    fi
    n=$(sed -n 's/^removed \([0-9]*\) temporary file.*/\1/p' "$tap_tmp/kill.out")
    removed=$((removed + ${n:-0}))
    if [ $rc -eq 0 ] && [ $kills -lt 20 ]; then # a cycle ran to its end
        cut -d, -f1-6 "$tap_tmp/kill/metrics.csv" >"$tap_tmp/m2"
        cmp -s "$tap_tmp/calm/checkpoints/last.safetensors" "$last" &&
            cmp -s "$tap_tmp/m1" "$tap_tmp/m2" &&
            [ "$(find "$tap_tmp/kill" -name '*.tmp*' | grep -c .)" -eq 0 ] ||
            mismatch=$((mismatch + 1))
        cycles=$((cycles + 1))
        rm -rf "$tap_tmp/kill"
    fi
done
run_mspt run "$tap_tmp/kill.lua" run_dir="$tap_tmp/kill" --resume
ok $([ $rc -eq 0 ] && [ $failed -eq 0 ] && [ $kills -eq 20 ]; echo $?) \
    "$kills SIGKILLs at random moments (seed $seed, calm run $calm_ms ms), each start resuming: all loaded"
[ $rc -eq 0 ] || diag "$err"
n=$(printf '%s' "$out" | sed -n 's/^removed \([0-9]*\) temporary file.*/\1/p')
removed=$((removed + ${n:-0}))
ok $([ $mismatch -eq 0 ]; echo $?) \
   "... $cycles earlier cycles run to their end each ended bit-identical, metrics.csv equal, no temporary file"
ok $(cmp -s "$tap_tmp/calm/checkpoints/last.safetensors" "$last"; echo $?) \
   "... and the run ends bit-identical to the uninterrupted one"
cut -d, -f1-6 "$tap_tmp/calm/metrics.csv" >"$tap_tmp/m1"
cut -d, -f1-6 "$tap_tmp/kill/metrics.csv" >"$tap_tmp/m2"
ok $(cmp -s "$tap_tmp/m1" "$tap_tmp/m2"; echo $?) "... with the same metrics.csv"
left=$(find "$tap_tmp/kill" -name '*.tmp*' | grep -c .)
ok $([ "$left" -eq 0 ]; echo $?) \
   "... and no temporary file left ($removed removed at starts, $left left)"

# A full disk while writing a checkpoint (a file-size limit below the
# checkpoint's size; SIGXFSZ ignored, so the write fails with EFBIG): the
# run stops naming the file, and the previous last.safetensors is intact.
run_mspt run "$tap_tmp/kill.lua" run_dir="$tap_tmp/disk" trainer.max_epochs=1 \
    trainer.save_top_k=0 'plots.samples=[]'
ok $rc "a 1-epoch run"
cp "$tap_tmp/disk/checkpoints/last.safetensors" "$tap_tmp/before.safetensors"
size=$(wc -c <"$tap_tmp/before.safetensors")
trap '' XFSZ
prlimit --fsize=$((size / 2)) "$MSPT_BUILDDIR/mspt" run "$tap_tmp/kill.lua" \
    run_dir="$tap_tmp/disk" --resume trainer.max_epochs=2 trainer.save_top_k=0 \
    'plots.samples=[]' >"$tap_tmp/out" 2>"$tap_tmp/err"
rc=$? err=$(cat "$tap_tmp/err")
trap - XFSZ
expect_error 1 "$tap_tmp/disk/checkpoints/last.safetensors: writing" \
    "a checkpoint save failing midway stops the run naming the file"
printf '%s' "$err" | grep -q "File too large"
ok $? "... and the cause"
left=$(find "$tap_tmp/disk" -name '*.tmp*' | grep -c .)
ok $(cmp -s "$tap_tmp/before.safetensors" "$tap_tmp/disk/checkpoints/last.safetensors" &&
     [ "$left" -eq 0 ]; echo $?) "... the previous last.safetensors intact, no temporary file left"
run_mspt run "$tap_tmp/kill.lua" run_dir="$tap_tmp/disk" --resume trainer.max_epochs=2 \
    trainer.save_top_k=0 'plots.samples=[]'
ok $rc "... and the run resumes from it once the disk has room"
tap_done

#!/bin/sh
# The files a run reads and writes, when they are not what they should be:
# a FIFO (or a directory) given as a checkpoint, weights or input is refused
# at once, never waited on; two runs in one run_dir: the second is refused,
# and a killed run's lock blocks nothing; temporary files of a killed save
# are removed at the next start; metrics.csv, the event file or a plot that
# cannot be written (a full disk) stops the run naming the file; synthetic
# windows beyond the memory are refused before the kernel kills the run.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-run-files-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
unset MSPT_PLUGIN_PATH
t=$tap_tmp
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $1"; }

cat >"$t/exp.lua" <<'LUA'
return {
  seed = 7, threads = 1,
  model = { _target_ = "femba", num_channels = 4, seq_length = 64,
            patch_size = { 2, 8 }, embed_dim = 4, num_blocks = 1, exp = 2,
            kernel_dec = { 3, 3 } },
  criterion = { _target_ = "smooth_l1" },
  optimizer = { _target_ = "adamw", lr = 1e-3 },
  data = { _target_ = "synthetic", windows = 40, channels = 4, samples = 64 },
  trainer = { batch_size = 4, max_epochs = 2, progress_bar = "off",
              num_workers = 0 },
  masking = { patch_size = { 1, 8 }, masking_ratio = 0.5 },
  plots = { samples = { 0 }, width = 400, height = 200 },
}
LUA
# run_mspt under a time limit: a refusal must not wait on a FIFO
run_limited() {
    timeout 30 "$MSPT_BUILDDIR/mspt" "$@" >"$t/out" 2>"$t/err"
    rc=$?
    out=$(cat "$t/out")
    err=$(cat "$t/err")
}

run_mspt run "$t/exp.lua" run_dir="$t/base"
ok $rc "a 2-epoch run"
[ $rc -eq 0 ] || diag "$err"
ckpt="$t/base/checkpoints/last.safetensors"

# ---- non-regular files as inputs --------------------------------------------
mkfifo "$t/fifo.safetensors"
mkdir "$t/dir.safetensors"
run_limited run "$t/exp.lua" run_dir="$t/r1" --resume="$t/fifo.safetensors"
expect_error 2 "fifo.safetensors: not a regular file (a FIFO)" "--resume FIFO: refused, not waited on"
run_limited run "$t/exp.lua" run_dir="$t/r2" resume="$t/fifo.safetensors"
expect_error 2 "fifo.safetensors: not a regular file (a FIFO)" "resume = FIFO: refused"
run_limited run "$t/exp.lua" run_dir="$t/r3" --resume="$t/dir.safetensors"
expect_error 2 "dir.safetensors: not a regular file (a directory)" "--resume DIRECTORY: refused"
run_limited run "$t/exp.lua" run_dir="$t/r4" pretrained_checkpoint_path="$t/fifo.safetensors"
expect_error 2 "pretrained_checkpoint_path: $t/fifo.safetensors: not a regular file (a FIFO)" \
    "pretrained_checkpoint_path = FIFO: refused"
for opt in --weights --input --mask; do
    w=$ckpt i=$MSPT_SRCDIR/tests/fixtures/encoder_femba.safetensors m=$i
    case $opt in
    --weights) w=$t/fifo.safetensors ;;
    --input) i=$t/fifo.safetensors ;;
    --mask) m=$t/fifo.safetensors ;;
    esac
    run_limited reconstruct "$t/exp.lua" --weights "$w" --input "$i" --mask "$m" \
        --out "$t/rec.safetensors"
    expect_error 2 "$opt $t/fifo.safetensors: not a regular file" "reconstruct $opt FIFO: refused"
done
mkdir "$t/fifo_run"
mkfifo "$t/fifo_run/metrics.csv"
run_limited plot "$t/fifo_run"
expect_error 2 "$t/fifo_run/metrics.csv: not a regular file" "mspt plot of a run whose metrics.csv is a FIFO: refused"
if "$MSPT_BUILDDIR/mspt" plugins 2>/dev/null | grep -q '^  hdf5 '; then
    mkfifo "$t/fifo.h5"
    run_limited run "$t/exp.lua" run_dir="$t/r5" "data={_target_: hdf5, path: $t/fifo.h5}"
    expect_error 2 "fifo.h5: not a regular file (a FIFO)" "an HDF5 data path that is a FIFO: refused"
else
    skip "no hdf5 plugin"
fi

# ---- one run per run_dir ------------------------------------------------------
# two at once: the one started second, while the first trains, is refused
# (one epoch: no checkpoint until the end, which would refuse the second
# run for holding an earlier run, not for the lock, were it late to start)
# (a scheduler that spends 20 ms of CPU per update keeps the first run
# going for seconds on any machine: the constant rate changes nothing else)
cat >"$t/slow.lua" <<'LUA'
local e = dofile(require("mspt").script_dir .. "/exp.lua")
e.scheduler = function(step, epoch, lr)
  local t = os.clock() + 0.02
  while os.clock() < t do end
  return lr
end
return e
LUA
long="trainer.max_epochs=1 data.windows=400"
run_mspt run "$t/slow.lua" run_dir="$t/one" $long
"$MSPT_BUILDDIR/mspt" run "$t/slow.lua" run_dir="$t/two" $long >"$t/a.out" 2>"$t/a.err" &
a=$!
# the second starts once the first holds the lock (and is still running),
# so that a loaded machine cannot let the first finish before the second
i=0
while [ $i -lt 300 ] && ! { [ -e "$t/two/.mspt.lock" ] && kill -0 $a 2>/dev/null; }; do
    sleep 0.1
    i=$((i + 1))
done
"$MSPT_BUILDDIR/mspt" run "$t/slow.lua" run_dir="$t/two" $long >"$t/b.out" 2>"$t/b.err" &
b=$!
wait $a
ra=$?
wait $b
rb=$?
busy=$(cat "$t/a.err" "$t/b.err" | grep -c "run_dir $t/two is in use by another mspt run (pid [0-9]*)")
ok $([ $((ra + rb)) -eq 2 ] && [ "$busy" -eq 1 ]; echo $?) \
    "two runs started together at one run_dir: one trains, the other exits 2 naming it (rc $ra, $rb)"
[ "$busy" -eq 1 ] || diag "$(cat "$t/a.err" "$t/b.err")"
# (the samples/s column is a timing, the rest must match)
cut -d, -f1-6 "$t/one/metrics.csv" >"$t/m1"
cut -d, -f1-6 "$t/two/metrics.csv" >"$t/m2"
ok $(cmp -s "$t/m1" "$t/m2"; echo $?) \
    "... and its metrics.csv is that of the same run alone ($(grep -c '' "$t/m2") lines)"

# a killed run's lock blocks nothing: the kernel drops a flock with its holder
"$MSPT_BUILDDIR/mspt" run "$t/exp.lua" run_dir="$t/killed" trainer.max_epochs=100000 \
    >/dev/null 2>&1 &
pid=$!
tries=0
while [ ! -f "$t/killed/checkpoints/last.safetensors" ] && [ $tries -lt 300 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
run_limited run "$t/exp.lua" run_dir="$t/killed" --resume trainer.max_epochs=100000
expect_error 2 "is in use by another mspt run (pid $pid)" "--resume while the run goes on: refused, naming its pid"
kill -9 $pid
wait $pid 2>/dev/null
run_limited run "$t/exp.lua" run_dir="$t/killed" --resume trainer.max_epochs=100000 \
    trainer.max_steps=1
ok $rc "after a SIGKILL the lock left behind does not block a resume"
[ $rc -eq 0 ] || diag "$err"

# ---- temporary files of killed saves --------------------------------------------
head -c 5000 /dev/zero >"$t/base/checkpoints/last.safetensors.tmp.4194304"
head -c 3000 /dev/zero >"$t/base/checkpoints/epoch=001-step=10.safetensors.tmp.77"
head -c 1000 /dev/zero >"$t/base/plots/curves.png.tmp.12"
echo keep >"$t/base/checkpoints/notes.tmp.txt"
run_mspt run "$t/exp.lua" run_dir="$t/base" --resume trainer.max_epochs=3
left=$(find "$t/base" -name '*.tmp.[0-9]*' | grep -c .)
ok $([ $rc -eq 0 ] && [ "$left" -eq 0 ] && [ -f "$t/base/checkpoints/notes.tmp.txt" ] &&
     printf '%s' "$out" | grep -qF "removed 3 temporary files (0.0 MB) left by a stopped run";
     echo $?) "at start the temporary files of killed saves are removed and counted"
[ $rc -eq 0 ] || diag "$err"

# ---- logs that cannot be written --------------------------------------------------
mkdir "$t/full"
ln -s /dev/full "$t/full/metrics.csv"
run_mspt run "$t/exp.lua" run_dir="$t/full"
expect_error 1 "$t/full/metrics.csv: cannot write: No space left on device" \
    "metrics.csv on a full disk (/dev/full): the run stops naming it"
# a file-size limit (SIGXFSZ ignored: writes fail with EFBIG) as a disk that
# fills up during the run: the event file grows past it with the images
trap '' XFSZ
big="trainer.max_epochs=40"
timeout 120 prlimit --fsize=60000 "$MSPT_BUILDDIR/mspt" run "$t/exp.lua" run_dir="$t/tbfull" \
    'logger={"tensorboard"}' $big >"$t/out" 2>"$t/err"
rc=$? err=$(cat "$t/err")
expect_error 1 "cannot write: File too large" "the event file filling the disk mid-run stops the run"
printf '%s' "$err" | grep -q "$t/tbfull/tb/events.out.tfevents" 
ok $? "... naming the event file"
timeout 120 prlimit --fsize=8000 "$MSPT_BUILDDIR/mspt" run "$t/exp.lua" run_dir="$t/csvfull" \
    'logger={"csv"}' trainer.log_every_n_steps=1 trainer.max_epochs=2000 \
    trainer.save_last=false trainer.save_top_k=0 'plots.samples={}' >"$t/out" 2>"$t/err"
rc=$? err=$(cat "$t/err")
expect_error 1 "$t/csvfull/metrics.csv: cannot write: File too large" \
    "metrics.csv filling the disk mid-run stops the run naming it"
trap - XFSZ

# ---- synthetic windows beyond the memory ------------------------------------------
# 2^31 - 1 windows (the largest integer parameter): 68.7 GB of index; and,
# under a 2 GB address-space limit, 2e8
avail=$(awk '/^MemAvailable:/ { print int($2 / 1048576) }' /proc/meminfo)
if [ "${avail:-0}" -lt 64 ]; then
    run_mspt run "$t/exp.lua" run_dir="$t/mem" data.windows=2147483647
    expect_error 2 "data.windows: 2147483647 windows need 68719476704 bytes of memory" \
        "synthetic windows beyond the available memory: refused with the figures"
else
    skip "this machine has 64 GB or more available"
fi
# (a sanitizer build cannot start there: its ASan says so on stderr, not as a report)
if (ulimit -v 2000000 && ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=stderr" \
        "$MSPT_BUILDDIR/mspt" --help >/dev/null 2>&1); then
    (ulimit -v 2000000 && "$MSPT_BUILDDIR/mspt" run "$t/exp.lua" run_dir="$t/mem" \
        data.windows=200000000 >"$t/out" 2>"$t/err")
    rc=$? err=$(cat "$t/err")
    expect_error 2 "data.windows: 200000000 windows need 6400000000 bytes of memory (32 per window for the loader's index) but" \
        "under ulimit -v 2 GB, 2e8 windows are refused, not a crash"
else
    skip "mspt does not start under ulimit -v (a sanitizer build)"
fi
tap_done

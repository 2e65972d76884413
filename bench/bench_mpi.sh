#!/bin/sh
# Data parallelism on one machine: FEMBA-Tiny training updates (22 × 1280
# windows, E 35, 2 blocks, exp 4; masks {1, 64} at 0.5, AdamW, clipping
# 1.0) with a global batch of 16, as 1 rank × 16 windows (plain mspt run)
# and as 2 ranks × 8 (mpirun -np 2), every rank on 1 thread.  The two runs
# alternate REPEATS times; each run's rate is its median windows/s over the
# updates after 2 warm-up ones (metrics.csv, one row per update).  Prints
# every pair, then the medians, their ratio, and what the 2-rank runs report
# per update: the gradient allreduce time, and apart from it the time the
# faster rank waited for the slower one.
#
#   cd /tmp/build-xxx && make && sh /work/main/bench/bench_mpi.sh [UPDATES [REPEATS]]
#
# Needs a build with MPI (mspt --version says +mpi).  Run it on an idle
# machine (bench/README.md): the 2 ranks take both cores of a 2-core one, so
# any other process slows them more than the 1-rank run.  MSPT_MPIRUN
# replaces the mpirun command line.
build=${MSPT_BUILDDIR:-.}
updates=${1:-10}
repeats=${2:-3}
# (in a container that bars ptrace, add --mca btl_vader_single_copy_mechanism none)
mpirun=${MSPT_MPIRUN:-"mpirun --allow-run-as-root -x MSPT_PLUGIN_PATH"}
[ -x "$build/mspt" ] || { echo "no $build/mspt (make)" >&2; exit 1; }
"$build/mspt" --version | grep -q '+mpi' || { echo "mspt was built without MPI" >&2; exit 1; }
MSPT_PLUGIN_PATH=$(cd "$build" && pwd)/plugins
export MSPT_PLUGIN_PATH
tmp=$(mktemp -d /tmp/mspt-bench-mpi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/femba.lua" <<LUA
return {
  name = "bench_mpi", seed = 1, threads = 1,
  model = { _target_ = "femba", num_channels = 22, seq_length = 1280,
            embed_dim = 35, num_blocks = 2, exp = 4 },
  criterion = { _target_ = "smooth_l1" },
  optimizer = { _target_ = "adamw", lr = 1e-4, weight_decay = 0.05 },
  data = { _target_ = "synthetic", windows = $((16 * updates)), channels = 22,
           samples = 1280 },
  trainer = { batch_size = 16, max_steps = $updates, train_val_split = 1.0,
              progress_bar = "off", gradient_clip_val = 1.0,
              log_every_n_steps = 1, save_top_k = 0, save_last = false,
              num_workers = 1 },
  masking = { patch_size = { 1, 64 }, masking_ratio = 0.5 },
  input_normalization = { normalize = true },
}
LUA

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0;
    else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# a run's windows/s: the median of its per-update rates after two updates
rate() { tail -n +2 "$1/metrics.csv" | awk -F, '$7 != "" && ++n > 2 { print $7 }' | median; }
field() { sed -n "s/.*$2 \([0-9.]*\) ms.*/\1/p" "$1"; }

uptime
for i in $(seq "$repeats"); do
    rm -rf "$tmp/one" "$tmp/two"
    "$build/mspt" run "$tmp/femba.lua" run_dir="$tmp/one" >"$tmp/one.out" 2>&1 ||
        { cat "$tmp/one.out"; exit 1; }
    $mpirun -np 2 "$build/mspt" run "$tmp/femba.lua" run_dir="$tmp/two" \
        trainer.batch_size=8 >"$tmp/two.out" 2>&1 || { cat "$tmp/two.out"; exit 1; }
    a=$(rate "$tmp/one") b=$(rate "$tmp/two")
    ar=$(field "$tmp/two.out" "gradient allreduce") w=$(field "$tmp/two.out" after)
    echo "$a $b $ar $w" >>"$tmp/pairs"
    awk -v i="$i" -v a="$a" -v b="$b" -v ar="$ar" -v w="$w" 'BEGIN {
        printf "run %d: 1 x 16 %6.2f windows/s, 2 x 8 %6.2f windows/s (ratio %.2f); " \
               "allreduce %s ms, waiting %s ms per update\n", i, a, b, b / a, ar, w }'
done
uptime
a=$(cut -d' ' -f1 "$tmp/pairs" | median) b=$(cut -d' ' -f2 "$tmp/pairs" | median)
ar=$(cut -d' ' -f3 "$tmp/pairs" | median) w=$(cut -d' ' -f4 "$tmp/pairs" | median)
awk -v a="$a" -v b="$b" -v ar="$ar" -v w="$w" -v n="$updates" -v r="$repeats" 'BEGIN {
    printf "FEMBA-Tiny, global batch 16, 1 thread per rank; medians of %d runs of %d updates\n", r, n
    printf "1 rank  x 16: %6.2f windows/s (%.0f ms per update)\n", a, 16000 / a
    printf "2 ranks x  8: %6.2f windows/s (%.0f ms per update): gradient allreduce " \
           "%s ms per update, and %s ms waiting for the slower rank\n", b, 16000 / b, ar, w
    printf "throughput ratio 2 ranks / 1 rank: %.2f\n", b / a }'

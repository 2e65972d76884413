#!/bin/sh
# The training-step benchmark, mspt and PyTorch side by side in one session:
# bench/bench_step (C) and bench/bench_step.py (Debian's python3-torch), one
# process per model and implementation, then the speed and peak-RSS ratios.
#
#   cd /tmp/build-xxx && make bench/bench_step && sh /work/main/bench/run_step_bench.sh [STEPS]
#
# Run it on an idle machine (see bench/README.md): both use 2 threads.
srcdir=$(cd "$(dirname "$0")/.." && pwd)
build=${MSPT_BUILDDIR:-.}
steps=${1:-7}
python=${PYTHON:-/usr/bin/python3}
[ -x "$build/bench/bench_step" ] || { echo "no $build/bench/bench_step (make bench/bench_step)" >&2; exit 1; }

field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ratio() { # LABEL C-LINE TORCH-LINE
    awk -v m="$1" -v cm="$(field "$2" median_ms)" -v pm="$(field "$3" median_ms)" \
        -v cr="$(field "$2" peak_rss_mb)" -v pr="$(field "$3" peak_rss_mb)" 'BEGIN {
        printf "%-26s step %7.1f ms vs %7.1f ms: %5.2fx faster; peak RSS %5.0f MB vs %5.0f MB: %.2f of PyTorch\n",
               m, cm, pm, pm / cm, cr, pr, cr / pr }'
}
uptime
# PyTorch twice: as installed (its libblas.so.3 is BLIS with generic
# kernels), and with BLIS_ARCH_TYPE=skx, the kernels mspt picks
for m in femba transformer; do
    c=$("$build/bench/bench_step" "$m" --steps "$steps" --threads 2) || exit 1
    p=$("$python" "$srcdir/bench/bench_step.py" "$m" --steps "$steps" --threads 2) || exit 1
    k=$(BLIS_ARCH_TYPE=skx "$python" "$srcdir/bench/bench_step.py" "$m" --steps "$steps" \
        --threads 2) || exit 1
    printf '%s\n%s\n%s (BLIS_ARCH_TYPE=skx)\n' "$c" "$p" "$k"
    ratio "$m" "$c" "$p"
    ratio "$m (torch on skx kernels)" "$c" "$k"
done
uptime

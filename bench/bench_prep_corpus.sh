#!/bin/sh
# bench_prep_corpus.sh — mspt prepare against BioFoundation's own pipeline
# (make_datasets/process_raw_eeg.py's per-file recipe on a Pool of 2
# workers, bench/bench_prep_corpus.py) on the same generated corpus, both
# on 2 cores: recordings/s, hours of EEG per second, medians of RUNS runs,
# and the ratio.  Run from the build directory:
#
#   sh $srcdir/bench/bench_prep_corpus.sh [FILES] [RUNS] [MIN_S] [MAX_S]
#
# Defaults: 200 recordings of 30..300 s (tests/make_edf_corpus: 22 signals
# at 200, 250, 256, 400 or 512 Hz), 3 runs.  Every run starts from an empty
# cache (mspt) or output directory (BioFoundation), with the corpus in the
# page cache (read once before).  Needs ~0.5 GB in $TMPDIR (or /tmp).
set -e
files=${1:-200} runs=${2:-3} lo=${3:-30} hi=${4:-300}
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(pwd)
[ -x "$build/mspt" ] || { echo "run from the build directory" >&2; exit 2; }
make -s tests/make_edf_corpus >/dev/null
w=$(mktemp -d "${TMPDIR:-/tmp}/mspt-bench-prep-XXXXXX")
trap 'rm -rf "$w"' EXIT
"$build/tests/make_edf_corpus" "$w/corpus" "$files" 0 "$lo" "$hi" 11 >/dev/null
cat "$w"/corpus/*/*.edf >/dev/null
cat >"$w/exp.lua" <<LUA
return {
  name = "bench", threads = 2,
  model = { _target_ = "femba", num_channels = 22, seq_length = 1280,
            patch_size = { 2, 16 }, embed_dim = 8, num_blocks = 1, exp = 1 },
  criterion = { _target_ = "smooth_l1" },
  optimizer = { _target_ = "adamw", lr = 1e-3 },
  data = { _target_ = "edf", path = "$w/corpus", cache_dir = "$w/cache" },
}
LUA
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus: $files recordings, $(du -sh "$w/corpus" | cut -f1)"
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
: >"$w/m.txt"
: >"$w/b.txt"
i=0
while [ $i -lt "$runs" ]; do
    rm -rf "$w/cache"
    /usr/bin/time -f "cpu %U %S" -o "$w/m.cpu" \
        "$build/mspt" prepare "$w/exp.lua" >/dev/null 2>"$w/m.err"
    grep -q " 0 skipped" "$w/m.err" || { tail -3 "$w/m.err" >&2; exit 1; }
    # the seconds mspt reports for building the dataset (its summary)
    grep "recordings: " "$w/m.err" |
        sed 's/.*; \([0-9.]*\) h of EEG kept, [0-9]* windows, \([0-9.]*\) s$/\2 \1/' |
        awk -v n="$files" -v cpu="$(awk '{print $2 + $3}' "$w/m.cpu")" \
            '{printf "%.3f %.4f %.4f %.3f %.2f\n", $1, n / $1, $2 / $1, $2, cpu}' >>"$w/m.txt"
    rm -rf "$w/out"
    /usr/bin/time -f "cpu %U %S" -o "$w/b.cpu" \
        /usr/bin/python3 "$src/bench/bench_prep_corpus.py" "$w/corpus" "$w/out" \
        --processes 2 >"$w/b.out" 2>/dev/null
    awk -v cpu="$(awk '{print $2 + $3}' "$w/b.cpu")" \
        '/^bf_seconds/ {t = $2} /^bf_files_per_s/ {f = $2} /^bf_hours_per_s/ {h = $2}
         /^bf_hours / {hh = $2} /^bf_errors/ {e = $2}
         END {printf "%.3f %.4f %.4f %.3f %.2f %d\n", t, f, h, hh, cpu, e}' "$w/b.out" >>"$w/b.txt"
    i=$((i + 1))
done
echo "mspt prepare (2 threads), per run: seconds recordings/s h/s hours cpu-seconds"
sed 's/^/  /' "$w/m.txt"
echo "BioFoundation process_raw_eeg.py (Pool of 2), per run: seconds recordings/s h/s hours cpu-seconds errors"
sed 's/^/  /' "$w/b.txt"
mr=$(cut -d' ' -f2 "$w/m.txt" | median) mh=$(cut -d' ' -f3 "$w/m.txt" | median)
br=$(cut -d' ' -f2 "$w/b.txt" | median) bh=$(cut -d' ' -f3 "$w/b.txt" | median)
echo "median: mspt $mr recordings/s, $mh h of EEG/s; BioFoundation $br recordings/s, $bh h/s"
mc=$(cut -d' ' -f5 "$w/m.txt" | median) bc=$(cut -d' ' -f5 "$w/b.txt" | median)
awk -v a="$mr" -v b="$br" 'BEGIN {printf "ratio (mspt / BioFoundation, recordings/s): %.1fx\n", a / b}'
awk -v a="$mc" -v b="$bc" 'BEGIN {printf "CPU seconds (user + sys, whole process): mspt %.1f, BioFoundation %.1f: %.1fx\n", a, b, b / a}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

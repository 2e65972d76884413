#!/bin/sh
# Fuzz the EDF/BDF reader with libFuzzer + AddressSanitizer + UBSan for a
# fixed budget (default 300 s; first argument to change it).  Needs clang
# (Debian: clang, libclang-rt-dev) and libfftw3-dev.  Exits non-zero on a
# crash, leaving the reproducer (crash-*) in the work directory.
#
#   fuzz/run_fuzz_edf.sh [seconds] [workdir]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../plugins/datasets"
budget=${1:-300}
work=${2:-/tmp/mspt-fuzz-edf}
mkdir -p "$work/corpus"
cd "$work"
clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$src" "$here/fuzz_edf.c" \
    "$src/edf_reader.c" "$src/edf_montage.c" "$src/edf_prep.c" \
    "$src/edf_fir.c" "$src/edf_filter.c" "$src/edf_resample.c" \
    "$src/edf_fft.c" $(pkg-config --cflags --libs fftw3f) -lm -lpthread \
    -o fuzz_edf
# seeds: small EDF+C, EDF+D and BDF files (the shapes tests/test_edf.c uses)
python3 - "$work/corpus" <<'PY'
import sys
def f(v, w):
    s = str(v).encode(); return s + b" " * (w - len(s))
def edf(path, bdf, reserved, sigs, onsets, dur):
    ns = len(sigs); bps = 3 if bdf else 2
    h = (b"\xffBIOSEMI" if bdf else f("0", 8)) + f("X", 80) + f("X", 80)
    h += f("01.01.00", 8) + f("00.00.00", 8) + f(256 * (ns + 1), 8)
    h += f(reserved, 44) + f(len(onsets), 8) + f(dur, 8) + f(ns, 4)
    for k, w in ((0, 16), (1, 80), (2, 8), (3, 8), (4, 8), (5, 8), (6, 8),
                 (7, 80), (8, 8), (9, 32)):
        h += b"".join(f(s[k], w) for s in sigs)
    body = b""
    for t in onsets:
        for s in sigs:
            n = s[8] * bps
            if s[0] == "EDF Annotations":
                tal = ("+%g\x14\x14\x00" % t).encode()
                body += tal + b"\0" * (n - len(tal))
            else:
                body += bytes((i * 37) % 251 for i in range(n))
    open(path, "wb").write(h + body)
a = ["EEG A-REF", "AgCl", "uV", -3200, 3200, -32768, 32767, "", 50, ""]
b = ["EEG B-LE", "AgCl", "mV", -3.2, 3.2, -2048, 2047, "", 25, ""]
t = ["EDF Annotations", "", "", -1, 1, -32768, 32767, "", 16, ""]
d = sys.argv[1]
edf(d + "/c.edf", 0, "EDF+C", [a, b, t], [0, .5, 1, 1.5], 0.5)
edf(d + "/d.edf", 0, "EDF+D", [a, b, t], [0, .5, 3, 3.5], 0.5)
edf(d + "/b.bdf", 1, "24BIT", [a, b], [0, 1], 1)
PY
./fuzz_edf -max_total_time="$budget" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 corpus

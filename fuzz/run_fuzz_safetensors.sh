#!/bin/sh
# Fuzz the safetensors reader (core/io/safetensors.c) with libFuzzer +
# AddressSanitizer + UBSan for a fixed budget (default 300 s; first argument
# to change it).  Needs clang (Debian: clang, libclang-rt-dev) and
# libyaml-dev.  Seeds: fuzz/corpus/safetensors.  Exits non-zero on a crash,
# leaving the reproducer (crash-*) in the work directory.
#
#   fuzz/run_fuzz_safetensors.sh [seconds] [workdir]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top="$here/.."
budget=${1:-300}
work=${2:-/tmp/mspt-fuzz-safetensors}
mkdir -p "$work/corpus"
cp "$here"/corpus/safetensors/* "$work/corpus/"
cd "$work"
clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$top/core" -I"$top/include" \
    "$here/fuzz_safetensors.c" "$top/core/io/safetensors.c" \
    "$top/core/io/files.c" "$top/core/error.c" \
    $(pkg-config --cflags --libs yaml-0.1) -lm -o fuzz_safetensors
./fuzz_safetensors -max_total_time="$budget" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 corpus

#!/bin/sh
# Fuzz the configuration readers with libFuzzer + AddressSanitizer + UBSan
# for a fixed budget (default 300 s): TARGET is yaml (the YAML loader,
# core/config/yaml_io.c) or override (the override parser,
# core/config/override.c).  Needs clang (Debian: clang, libclang-rt-dev) and
# libyaml-dev.  Seeds come from fuzz/corpus/TARGET; exits non-zero on a
# crash, leaving the reproducer (crash-*) in the work directory.
#
#   fuzz/run_fuzz_config.sh TARGET [seconds] [workdir]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top="$here/.."
target=${1:?usage: run_fuzz_config.sh yaml|override [seconds] [workdir]}
budget=${2:-300}
work=${3:-/tmp/mspt-fuzz-$target}
case $target in
yaml) extra= ;;
override) extra="$top/core/config/override.c $top/core/config/suggest.c" ;;
*) echo "run_fuzz_config.sh: unknown target '$target' (yaml or override)" >&2; exit 2 ;;
esac
mkdir -p "$work/corpus"
cp "$here/corpus/$target"/* "$work/corpus/"
cd "$work"
# shellcheck disable=SC2086
clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$top/core" -I"$top/include" \
    "$here/fuzz_$target.c" "$top/core/config/yaml_io.c" "$top/core/config/node.c" \
    "$top/core/io/files.c" "$top/core/error.c" $extra \
    $(pkg-config --cflags --libs yaml-0.1) -lm -o "fuzz_$target"
dict=
[ -f "$here/$target.dict" ] && dict="-dict=$here/$target.dict"
# shellcheck disable=SC2086
"./fuzz_$target" -max_total_time="$budget" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 $dict corpus

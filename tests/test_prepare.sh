#!/bin/sh
# mspt prepare over a corpus as it comes: 60 generated EDF recordings in a
# directory tree, 10 broken in 10 ways (tests/make_edf_corpus.c), prepare to
# completion with the 10 named on stderr and in the cache's log; a SIGKILL
# in the middle and a rerun redo only the unfinished files, with shards
# identical to an uninterrupted run; on_error = "stop" and its default for
# a named file; a dataset with nothing usable; mspt run's data_errors.log.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-prepare-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
T=$tap_tmp

"$MSPT_BUILDDIR/tests/make_edf_corpus" "$T/corpus" 60 10 20 60 7 >"$T/bad.txt" ||
    { echo "Bail out! make_edf_corpus"; exit 1; }
cat >"$T/exp.lua" <<EOF
return {
  name = "prep", threads = 2,
  model = { _target_ = "femba", num_channels = 22, seq_length = 1280,
            patch_size = { 2, 16 }, embed_dim = 8, num_blocks = 1, exp = 1 },
  criterion = { _target_ = "smooth_l1" },
  optimizer = { _target_ = "adamw", lr = 1e-3 },
  data = { _target_ = "edf", path = "$T/corpus", cache_dir = "$T/ref" },
  trainer = { max_steps = 2, batch_size = 4, limit_val_batches = 1 },
  logger = { "csv" },
}
EOF
nbad=$(grep -c '' "$T/bad.txt")
ok $([ "$nbad" -eq 10 ] && [ "$(cut -d' ' -f2 "$T/bad.txt" | sort -u | grep -c '')" -eq 10 ]
     echo $?) "the corpus has 10 files broken in 10 different ways"

# ---- the whole corpus, uninterrupted -----------------------------------
run_mspt prepare "$T/exp.lua"
ok $([ $rc -eq 0 ] && echo "$out" | grep -q "^data: datasets.edf, [1-9][0-9]* windows of 22 x 1280$"
     echo $?) "prepare completes despite 10 broken files"
[ $rc -eq 0 ] || diag "rc=$rc" "$(printf '%s' "$err" | tail -3)"
missing=0
while read -r f kind; do
    printf '%s\n' "$err" | grep -qF "data: skipped $f: " || { missing=1; diag "not on stderr: $f ($kind)"; }
    grep -qF "data: skipped $f: " "$T/ref/data_errors.log" || { missing=1; diag "not in the log: $f ($kind)"; }
done <"$T/bad.txt"
ok $missing "each broken file is named with its reason, on stderr and in the cache's data_errors.log"
ok $([ "$(grep -c "skipped" "$T/ref/data_errors.log")" -eq 10 ] &&
     [ "$(printf '%s\n' "$err" | grep -c ": skipped ")" -eq 10 ]; echo $?) \
   "exactly 10 skipped: no good file among them"
ok $(printf '%s\n' "$err" | grep -q "^data: 60 recordings: 50 used (0 from the cache, 50 preprocessed), 10 skipped (named above and in data_errors.log); [0-9.]* h of EEG kept, [0-9]* windows"
     echo $?) "the summary counts files used and skipped and hours of EEG"
# what MNE repairs is used, with one warning each (count -1, a partial record)
ok $(printf '%s\n' "$err" | grep -q "^data: warning: .*is -1 (the writer never closed the file).*counting from the size (as MNE)$" &&
     printf '%s\n' "$err" | grep -q "^data: warning: .*a trailing partial record (1000 of [0-9]* bytes) is dropped (as MNE)$"
     echo $?) "a record count of -1 and a trailing partial record: used, one warning line each"
nshards=$(ls "$T/ref" | grep -c '\.win$')
ok $([ "$nshards" -eq 50 ] && ! ls "$T/ref" | grep -q '\.tmp\.'; echo $?) \
   "50 shards, no temporary file left"

run_mspt prepare "$T/exp.lua"
ok $([ $rc -eq 0 ] && printf '%s\n' "$err" | grep -q "50 used (50 from the cache, 0 preprocessed), 10 skipped"
     echo $?) "a second prepare maps all 50 shards and names the 10 again"

# ---- SIGKILL in the middle, then a rerun -------------------------------
# one thread, so that the kill lands with files left to do
"$MSPT_BUILDDIR/mspt" prepare "$T/exp.lua" data.cache_dir="$T/cache" threads=1 \
    >/dev/null 2>"$T/killed.err" &
pid=$!
i=0
while [ $i -lt 3000 ]; do
    n=$(ls "$T/cache" 2>/dev/null | grep -c '\.win$')
    [ "$n" -ge 8 ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.01
    i=$((i + 1))
done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
done_before=$(ls "$T/cache" | grep -c '\.win$')
ok $([ "$done_before" -ge 8 ] && [ "$done_before" -lt 50 ]; echo $?) \
   "SIGKILL in the middle: $done_before of 50 shards written"
# a shard cut short under its final name (as a crash of a careless writer
# would leave) and a temporary file of a dead writer
victim=$(ls "$T/cache" | grep '\.win$' | head -1)
truncate -s 5000 "$T/cache/$victim"
deadpid=$(sh -c 'echo $$')
echo partial >"$T/cache/$victim.tmp.$deadpid"
(cd "$T/cache" && ls | grep '\.win$' | grep -vF "$victim" | xargs stat -c '%i %Y %n') \
    | sort >"$T/before.txt"
kept=$(grep -c '' "$T/before.txt")
run_mspt prepare "$T/exp.lua" data.cache_dir="$T/cache"
redo=$((50 - kept))
ok $([ $rc -eq 0 ] && printf '%s\n' "$err" | grep -q "50 used ($kept from the cache, $redo preprocessed), 10 skipped"
     echo $?) "the rerun takes the $kept finished shards and redoes the other $redo"
[ $rc -eq 0 ] || diag "$(printf '%s' "$err" | tail -2)"
ok $(printf '%s\n' "$err" | grep -qF "cache $T/cache/$victim: size" &&
     printf '%s\n' "$err" | grep -qF "(truncated); rebuilding"; echo $?) \
   "a shard cut short is never taken as done: named and rebuilt"
(cd "$T/cache" && ls | grep '\.win$' | grep -vF "$victim" | xargs stat -c '%i %Y %n') \
    | sort >"$T/after.txt"
ok $(join -j 3 "$T/before.txt" "$T/after.txt" | awk '$2 != $4 || $3 != $5 {bad = 1} END {exit bad}'
     echo $?) "the finished shards are left untouched (same inode and time)"
same=0
for f in $(ls "$T/ref" | grep '\.win$'); do
    cmp -s "$T/ref/$f" "$T/cache/$f" || { same=1; diag "differs: $f"; }
done
ok $([ $same -eq 0 ] && [ "$(ls "$T/cache" | grep -c '\.win$')" -eq 50 ] &&
     ! ls "$T/cache" | grep -q '\.tmp\.'; echo $?) \
   "after the rerun: the 50 shards of the uninterrupted run, byte for byte; no temporary file"

# SIGINT (its default action: a background job of a script ignores it, so
# env restores it) leaves the same state; the rerun resumes from it
if env --default-signal=INT true 2>/dev/null; then
    env --default-signal=INT "$MSPT_BUILDDIR/mspt" prepare "$T/exp.lua" \
        data.cache_dir="$T/int" threads=1 >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ $i -lt 3000 ]; do
        [ "$(ls "$T/int" 2>/dev/null | grep -c '\.win$')" -ge 4 ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.01
        i=$((i + 1))
    done
    kill -INT $pid 2>/dev/null
    wait $pid
    irc=$?
    kept=$(ls "$T/int" | grep -c '\.win$')
    run_mspt prepare "$T/exp.lua" data.cache_dir="$T/int"
    ok $([ $irc -eq 130 ] && [ "$kept" -lt 50 ] && [ $rc -eq 0 ] &&
         printf '%s\n' "$err" | grep -q "50 used ($kept from the cache, $((50 - kept)) preprocessed)"
         echo $?) "SIGINT after $kept shards (exit $irc): the rerun keeps them and does the rest"
else
    ok 0 "SIGINT # SKIP env --default-signal not available"
fi

# ---- on_error ----------------------------------------------------------
for f in $(sort "$T/bad.txt" | cut -d' ' -f1); do first=$f; break; done
run_mspt prepare "$T/exp.lua" data.on_error=stop
expect_error 2 "data: $first: " "on_error = stop: the first broken file (in name order) stops it, exit 2"
run_mspt prepare "$T/exp.lua" data.on_error=maybe
expect_error 2 "data.on_error: expected 'skip' or 'stop', got 'maybe'" "a bad on_error is a config error"
run_mspt prepare "$T/exp.lua" data.path="$first"
expect_error 2 "$first: " "a single named file stops by default (exit 2, one line)"
run_mspt prepare "$T/exp.lua" data.path="$first" data.on_error=skip
ok $([ $rc -ne 0 ] && printf '%s\n' "$err" | grep -q "^data: skipped $first: " &&
     printf '%s\n' "$err" | tail -1 | grep -q "no windows: all 1 recordings were skipped; the first: $first: "
     echo $?) "on_error = skip and nothing usable: a clear 'no windows' error"
mkdir "$T/onlybad"
while read -r f kind; do cp "$f" "$T/onlybad/$kind.edf"; done <"$T/bad.txt"
run_mspt prepare "$T/exp.lua" data.path="$T/onlybad"
ok $([ $rc -eq 2 ] && printf '%s\n' "$err" | tail -1 |
     grep -q "^mspt: data: no windows: all 10 recordings were skipped"; echo $?) \
   "a directory of broken files only: exit 2, no windows"
[ $rc -eq 2 ] || diag "rc=$rc: $(printf '%s' "$err" | tail -1)"

# ---- mspt run: the skipped files in run_dir/data_errors.log -------------
run_mspt run "$T/exp.lua" run_dir="$T/run"
missing=0
while read -r f kind; do
    grep -qF "data: skipped $f: " "$T/run/data_errors.log" 2>/dev/null || missing=1
done <"$T/bad.txt"
ok $([ $rc -eq 0 ] && [ $missing -eq 0 ] &&
     [ "$(grep -c 'skipped' "$T/run/data_errors.log")" -eq 10 ]; echo $?) \
   "mspt run: the 10 skipped files are in run_dir/data_errors.log"
[ $rc -eq 0 ] || diag "rc=$rc: $(printf '%s' "$err" | tail -2)"
tap_done

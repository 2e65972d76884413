#!/bin/sh
# mspt plot RUN_DIR: loss curves from a hand-made metrics.csv into
# RUN_DIR/plots/curves.png; each bad input one line with its exit status.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-plot-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT

# png_size FILE: "WIDTH HEIGHT" from the IHDR chunk (big-endian at byte 16)
png_size() {
    od -An -tu1 -j16 -N8 "$1" |
        awk '{ print ($1*16777216 + $2*65536 + $3*256 + $4), ($5*16777216 + $6*65536 + $7*256 + $8) }'
}

run_mspt --help
ok $(echo "$out" | grep -q "^  plot RUN_DIR"; echo $?) "--help lists plot"

run_mspt plot
expect_error 2 "plot: missing run directory" "no run directory: exit 2"
run_mspt plot "$tap_tmp" --frobnicate
expect_error 2 "plot: unknown option '--frobnicate'" "unknown option: exit 2"
run_mspt plot "$tap_tmp/nowhere"
expect_error 2 "nowhere/metrics.csv: No such file or directory" "no metrics.csv: exit 2"

run="$tap_tmp/run"
mkdir -p "$run"
cat >"$run/metrics.csv" <<'CSV'
step,epoch,train_loss,train_loss_epoch,val_loss,lr,samples_per_sec
2,0,1.25,,,2.5e-05,310.5
4,0,0.9,,,5e-05,320
6,0,0.75,,,7.5e-05,318
6,0,,0.95,0.8,,
8,1,0.6,,,0.0001,322
10,1,0.52,,,0.0001,325
12,1,0.5,,,9e-05,301
12,1,,0.55,0.58,,
CSV

if "$MSPT_BUILDDIR/mspt" --version | grep -q -- "-cairo"; then
    run_mspt plot "$run"
    expect_error 1 "plots need cairo" "built without cairo: plot says so, exit 1"
    tap_done
    exit
fi

run_mspt plot "$run"
ok $([ $rc -eq 0 ] && [ "$out" = "wrote $run/plots/curves.png" ]; echo $?) \
   "plot: exit 0, names the file written"
[ $rc -eq 0 ] || diag "rc=$rc stderr: $err"
png="$run/plots/curves.png"
ok $([ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; echo $?) \
   "curves.png is a PNG"
ok $([ "$(png_size "$png")" = "1000 450" ]; echo $?) "curves.png is 1000x450"
ok $([ "$(ls "$run/plots")" = curves.png ]; echo $?) "no temporary file left beside it"

cp "$png" "$tap_tmp/linear.png"
run_mspt plot "$run" --log
ok $([ $rc -eq 0 ] && ! cmp -s "$png" "$tap_tmp/linear.png"; echo $?) \
   "--log draws another picture over the same file"

# a run that only logged epochs, and columns in another order
mkdir -p "$tap_tmp/epochs"
printf 'epoch,step,val_loss,train_loss_epoch,train_loss,lr,extra\n0,5,0.9,1.1,,,x\n1,10,0.7,0.8,,,y\n' \
    >"$tap_tmp/epochs/metrics.csv"
run_mspt plot "$tap_tmp/epochs"
ok $([ $rc -eq 0 ] && [ -s "$tap_tmp/epochs/plots/curves.png" ]; echo $?) \
   "columns found by name; epoch rows alone are enough"

bad="$tap_tmp/bad"
mkdir -p "$bad"
printf 'step,epoch,train_loss,train_loss_epoch,val_loss,lr\n1,0,0.5,,,1e-3\n2,0,abc,,,1e-3\n' \
    >"$bad/metrics.csv"
run_mspt plot "$bad"
expect_error 2 "metrics.csv:3: train_loss 'abc' is not a number" "bad number: line and column named"
printf 'step,epoch,train_loss,train_loss_epoch,lr\n1,0,0.5,,1e-3\n' >"$bad/metrics.csv"
run_mspt plot "$bad"
expect_error 2 "no column 'val_loss'" "missing column: named"
printf 'step,epoch,train_loss,train_loss_epoch,val_loss,lr,samples_per_sec\n' >"$bad/metrics.csv"
run_mspt plot "$bad"
expect_error 1 "no loss or lr values to plot" "header only: nothing to plot, exit 1"
ok $([ ! -e "$bad/plots/curves.png" ]; echo $?) "no picture written after an error"

tap_done

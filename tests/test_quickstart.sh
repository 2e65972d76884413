#!/bin/sh
# The quick start's promise: examples/quickstart.lua pretrains on synthetic
# EEG with validation loss falling below half of its first value, and
# leaves hparams.yaml, metrics.csv, checkpoints, plots and TensorBoard files.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-quickstart-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
unset MSPT_PLUGIN_PATH
run="$tap_tmp/run"
run_mspt run "$MSPT_SRCDIR/examples/quickstart.lua" run_dir="$run" trainer.progress_bar=off
ok $rc "the quickstart runs"
[ $rc -eq 0 ] || diag "$err"
vals=$(awk -F, 'NR > 1 && $5 != "" { print $5 }' "$run/metrics.csv")
first=$(echo "$vals" | head -n 1)
last=$(echo "$vals" | tail -n 1)
ok $(awk -v f="$first" -v l="$last" 'BEGIN { exit !(f > 0 && l < 0.5 * f) }'; echo $?) \
   "val_loss falls below half of its first value ($first -> $last)"
for f in hparams.yaml metrics.csv checkpoints/last.safetensors plots/curves.png \
         plots/epoch_008_sample_0.png plots/epoch_001_sample_2.png; do
    ok $([ -s "$run/$f" ]; echo $?) "run directory holds $f"
done
ok $(ls "$run"/tb/events.out.tfevents.* >/dev/null 2>&1; echo $?) "run directory holds a TensorBoard event file"
ok $(ls "$run/checkpoints" | grep -q '^epoch='; echo $?) "and the best checkpoint by val_loss"
tap_done

#!/bin/sh
# The shipped BioFoundation experiments: examples/femba_pretrain.lua and
# examples/tinymyo_pretrain.lua, as written, train a few steps on small files
# in BioFoundation's layouts (TUEG float16 groups; EMG directories, two of
# them padded to 16 channels) with only the run's length and batch cut down,
# and their resolved configuration is BioFoundation's.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-examples-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
unset MSPT_PLUGIN_PATH
"$MSPT_BUILDDIR/tests/make_biofoundation_data" "$tap_tmp/data"
ok $? "BioFoundation-layout files written"
export DATA_PATH="$tap_tmp/data"
short="trainer.max_steps=2 trainer.batch_size=2 trainer.num_workers=0 trainer.limit_val_batches=1 trainer.progress_bar=off threads=2"

# yaml_is RUN SECTION KEY VALUE: in RUN's hparams.yaml, SECTION's KEY is
# VALUE (compared as numbers when both are, so 1e-5 matches 1.0e-05)
yaml_is() {
    awk -v sec="$2" -v key="$3" -v want="$4" '
        /^[^ ]/ { cur = $0; sub(/:.*/, "", cur); next }
        cur == sec && $0 ~ "^  " key ":" {
            v = $0; sub(/^[^:]*: */, "", v); found = 1
            num = "^[-+]?[0-9.]+([eE][-+]?[0-9]+)?$"
            if (v ~ num && want ~ num) same = (v + 0 == want + 0); else same = (v == want)
            exit }
        END { exit !(found && same) }' "$tap_tmp/$1/hparams.yaml"
}
# losses_finite RUN: the epoch's train_loss_epoch and val_loss are finite
losses_finite() {
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
             $col["val_loss"] != "" { n++; t = $col["train_loss_epoch"]; v = $col["val_loss"]
                 if (!(t + 0 > 0 && t + 0 < 1e30 && v + 0 > 0 && v + 0 < 1e30)) bad = 1 }
             END { exit !(n > 0 && !bad) }' "$tap_tmp/$1/metrics.csv"
}

run_mspt run "$MSPT_SRCDIR/examples/femba_pretrain.lua" run_dir="$tap_tmp/femba" $short
ok $rc "femba_pretrain.lua trains 2 steps on TUEG-layout float16 files"
[ $rc -eq 0 ] || diag "$err"
losses_finite femba
ok $? "femba: finite train and validation losses in metrics.csv"
ok $([ -s "$tap_tmp/femba/checkpoints/last.safetensors" ]; echo $?) "femba: last checkpoint written"
n=$(grep -c '_target_: hdf5' "$tap_tmp/femba/hparams.yaml")
ok $([ "$n" -eq 2 ]; echo $?) "femba: one dataset per TUEG file ($n)"
yaml_is femba input_normalization mode affine && yaml_is femba input_normalization lower -20 &&
    yaml_is femba input_normalization upper 20
ok $? "femba: RobustQuartileNormalize(-20, 20) as the affine mode"
yaml_is femba masking per_batch true && yaml_is femba masking masking_ratio 0.6
ok $? "femba: one mask per batch, ratio 0.6"
yaml_is femba optimizer _target_ lamb && yaml_is femba optimizer weight_decay 0
ok $? "femba: Lamb without weight decay, as the task builds it"

run_mspt run "$MSPT_SRCDIR/examples/tinymyo_pretrain.lua" run_dir="$tap_tmp/tinymyo" $short \
    trainer.accumulate_grad_batches=1 'plots.samples=[0]'
ok $rc "tinymyo_pretrain.lua trains 2 steps on EMG-layout directories (two padded to 16 channels)"
[ $rc -eq 0 ] || diag "$err"
losses_finite tinymyo
ok $? "tinymyo: finite train and validation losses in metrics.csv"
ok $([ -s "$tap_tmp/tinymyo/checkpoints/last.safetensors" ]; echo $?) "tinymyo: last checkpoint written"
yaml_is tinymyo model rope none && yaml_is tinymyo model norm_eps 1e-5 &&
    yaml_is tinymyo model drop_path_schedule constant && yaml_is tinymyo model init tinymyo
ok $? "tinymyo: TinyMyo's model settings"
yaml_is tinymyo input_normalization mode minmax &&
    yaml_is tinymyo masking unmasked_loss_coeff 0.1 && yaml_is tinymyo scheduler epoch_lag 1
ok $? "tinymyo: min-max normalisation and the unmasked loss term"
n=$(grep -c 'pad_up_to_max_chans: 16' "$tap_tmp/tinymyo/hparams.yaml")
ok $([ "$n" -eq 2 ]; echo $?) "tinymyo: DB6 and DB7 padded to 16 channels"

# without DATA_PATH: one clear line, exit 2
unset DATA_PATH
run_mspt run "$MSPT_SRCDIR/examples/femba_pretrain.lua" run_dir="$tap_tmp/none"
expect_error 2 "DATA_PATH" "femba_pretrain.lua without DATA_PATH names it"
tap_done

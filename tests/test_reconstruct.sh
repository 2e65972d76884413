#!/bin/sh
# mspt reconstruct: on the PyTorch fixtures of tests/test_encoders.c (which
# are weights, input and mask files too) it reproduces the reference's
# reconstruction, embeddings, loss and gradients; --windows serves the
# windows and masks `mspt run` trains on; hparams.yaml and checkpoints work;
# each usage or configuration error is one line with exit status 2.
. "$MSPT_SRCDIR/tests/tap.sh"
tap_tmp=$(mktemp -d /tmp/mspt-test-reconstruct-XXXXXX)
trap 'rm -rf "$tap_tmp"' EXIT
unset MSPT_PLUGIN_PATH
fx="$MSPT_SRCDIR/tests/fixtures"
compare() { "$MSPT_BUILDDIR/tests/test_encoders" --compare "$@" >"$tap_tmp/cmp" 2>&1; }

cat >"$tap_tmp/femba.lua" <<'LUA'
return {
  seed = 5, threads = 2,
  model = { _target_ = "femba", num_channels = 4, seq_length = 64,
            patch_size = { 2, 8 }, embed_dim = 4, num_blocks = 2, exp = 2,
            kernel_dec = { 3, 3 } },
  criterion = { _target_ = "smooth_l1" },
  optimizer = { _target_ = "adamw", lr = 0 },
  data = { _target_ = "synthetic", windows = 24, channels = 4, samples = 64 },
  trainer = { batch_size = 4, max_steps = 2, log_every_n_steps = 1,
              progress_bar = "off", save_top_k = 0, num_workers = 0 },
  masking = { patch_size = { 1, 8 } },
  input_normalization = { normalize = true },
}
LUA
cat >"$tap_tmp/transformer.lua" <<'LUA'
return {
  model = { _target_ = "transformer", num_channels = 3, seq_length = 48,
            patch_size = 8, embed_dim = 16, depth = 2, num_heads = 2 },
  criterion = { _target_ = "smooth_l1" },
  optimizer = { _target_ = "adamw" },
  data = { _target_ = "synthetic", windows = 8, channels = 3, samples = 48 },
  masking = { patch_size = { 1, 8 } },
}
LUA

# round trips: the fixture as weights, input and mask
for m in femba transformer; do
    f="$fx/encoder_$m.safetensors"
    run_mspt reconstruct "$tap_tmp/$m.lua" --weights "$f" --input "$f" --mask "$f" \
        --grad --out "$tap_tmp/$m.safetensors" input_normalization.normalize=false
    ok $rc "$m: reconstruct --grad with the fixture's weights, input and mask"
    [ $rc -eq 0 ] || diag "$err"
    compare "$tap_tmp/$m.safetensors" "$f"
    ok $? "$m: reconstruction, embeddings, loss and every gradient match PyTorch (1e-4)"
    diag "$(tail -2 "$tap_tmp/cmp")"
done

# without --grad: the same outputs, no gradients
f="$fx/encoder_femba.safetensors"
run_mspt reconstruct "$tap_tmp/femba.lua" --weights "$f" --input "$f" --mask "$f" \
    --out "$tap_tmp/nograd.safetensors" input_normalization.normalize=false
compare "$tap_tmp/nograd.safetensors" "$f"
same=$?
ok $([ $rc -eq 0 ] && [ $same -eq 0 ] && ! grep -aq '"grad\.' "$tap_tmp/nograd.safetensors";
     echo $?) "without --grad: same reconstruction and loss, no gradients written"

# --windows: the windows and masks of the run's first steps
# (the fixture holds inputs and gradients beside the weights: not strict)
run_mspt run "$tap_tmp/femba.lua" run_dir="$tap_tmp/run" pretrained_checkpoint_path="$f" \
    pretrained_strict=false
ok $rc "a 2-step run with lr 0 from the fixture's weights"
[ $rc -eq 0 ] || diag "$err"
step1=$(grep '^1,0,' "$tap_tmp/run/metrics.csv" | cut -d, -f3)
loss_of() { grep -ao '"loss":"[^"]*"' "$1" | cut -d'"' -f4; }
run_mspt reconstruct "$tap_tmp/femba.lua" --weights "$f" --windows 4 --out "$tap_tmp/w4.safetensors"
ok $(awk -v a="$(loss_of "$tap_tmp/w4.safetensors")" -v b="$step1" \
     'BEGIN { d = a - b; exit !(b > 0 && d * d < 1e-12 * b * b) }'; echo $?) \
   "--windows 4: the loss of the run's first step ($(loss_of "$tap_tmp/w4.safetensors") vs $step1)"
run_mspt reconstruct "$tap_tmp/run/hparams.yaml" --weights "$tap_tmp/run/checkpoints/last.safetensors" \
    --windows 8 --out "$tap_tmp/w8.safetensors"
mean=$(grep '^2,0,,' "$tap_tmp/run/metrics.csv" | cut -d, -f4)
ok $([ $rc -eq 0 ] && awk -v a="$(loss_of "$tap_tmp/w8.safetensors")" -v b="$mean" \
     'BEGIN { d = a - b; exit !(b > 0 && d * d < 1e-12 * b * b) }'; echo $?) \
   "from hparams.yaml and a checkpoint, --windows 8: the run's epoch loss ($mean)"
[ $rc -eq 0 ] || diag "$err"

# errors: one line, exit 2 for usage and configuration
r() { run_mspt reconstruct "$tap_tmp/femba.lua" "$@"; }
r --weights "$tap_tmp/nope.safetensors" --windows 2 --out "$tap_tmp/o.safetensors"
expect_error 2 "--weights $tap_tmp/nope.safetensors: No such file or directory" "missing weights file"
r --weights "$f" --input "$tap_tmp/nope.safetensors" --out "$tap_tmp/o.safetensors"
expect_error 2 "--input $tap_tmp/nope.safetensors: No such file or directory" "missing input file"
r --weights "$f" --input "$fx/encoder_transformer.safetensors" --out "$tap_tmp/o.safetensors"
expect_error 2 "--input: windows are 3 channels x 48 samples but the model is configured for num_channels=4, seq_length=64" \
    "an input of another shape names both"
r --weights "$f" --windows 3 --mask "$f" --out "$tap_tmp/o.safetensors"
expect_error 2 '"mask" (2,4,64) does not match the input (3,4,64)' "a mask of another shape names both"
r --weights "$f" --input "$f" --mask "$fx/encoder_shapes.safetensors" --out "$tap_tmp/o.safetensors"
expect_error 2 'no tensor "mask"' "a mask file without \"mask\""
r --weights "$fx/encoder_transformer.safetensors" --windows 2 --out "$tap_tmp/o.safetensors"
expect_error 2 "no weights for 46 of the model's 46 parameters: 'patch_embed.proj.weight', 'patch_embed.proj.bias'" "weights of another model"
r --weights "$f" --windows 2 --out "$tap_tmp/o.safetensors" model.embed_dim=5
expect_error 2 "'model.patch_embed.proj.weight' has shape (4,1,2,8) but the model's is (5,1,2,8)" \
    "weights of another size name both shapes"
r --weights "$f" --windows 100 --out "$tap_tmp/o.safetensors"
expect_error 2 "--windows 100: the experiment has" "more windows than the data holds"
r --weights "$f" --out "$tap_tmp/o.safetensors"
expect_error 2 "give exactly one of --input and --windows" "no input"
r --weights "$f" --windows 2
expect_error 2 "--weights and --out are required" "no --out"
r --weights "$f" --windows two --out "$tap_tmp/o.safetensors"
expect_error 2 "--windows 'two' is not a count" "a bad --windows"
r --weights "$f" --windows 2 --out "$tap_tmp/o.safetensors" --frobnicate
expect_error 2 "unknown option '--frobnicate'" "unknown option"
r --weights "$f" --windows 2 --out "$tap_tmp/no/such/dir/o.safetensors"
expect_error 1 "--out: $tap_tmp/no/such/dir/o.safetensors" "an unwritable output is a runtime error (exit 1)"
ok $([ ! -e "$tap_tmp/o.safetensors" ]; echo $?) "no output written by a failed command"
tap_done

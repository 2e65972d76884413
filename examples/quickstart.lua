-- Quick start: a small FEMBA pretrained by masked reconstruction on the
-- built-in synthetic EEG (22 channels x 1280 samples, 256 Hz), so mspt runs
-- on a fresh machine with no data.  About a minute on 2 cores.
--
--   ./mspt run examples/quickstart.lua
--   ./mspt run examples/quickstart.lua optimizer.lr=1e-3 trainer.max_epochs=10
--
-- The run directory (runs/quickstart/<date>-<time>/) holds hparams.yaml,
-- metrics.csv, checkpoints/, plots/ (reconstructions, curves.png) and tb/
-- (TensorBoard: tensorboard --logdir runs).
return {
  name = "quickstart",
  seed = 42,

  model = {
    _target_ = "femba",
    num_channels = 22, seq_length = 1280, patch_size = { 2, 16 },
    embed_dim = 16, num_blocks = 1, exp = 2,
  },
  criterion = { _target_ = "smooth_l1", beta = 1.0 },
  optimizer = { _target_ = "adamw", lr = 2e-3, weight_decay = 0.01 },
  scheduler = { _target_ = "cosine", warmup_epochs = 2, lr_min = 1e-5 },
  data = { _target_ = "synthetic", windows = 256, channels = 22, samples = 1280 },

  trainer = { max_epochs = 8, batch_size = 16, gradient_clip_val = 1.0 },
  masking = { patch_size = { 1, 32 }, masking_ratio = 0.5 },
  -- per-channel robust scaling (the 2.5 % and 97.5 % quantiles to 0 and 1):
  -- on this synthetic EEG the small model learns fastest with it (val_loss
  -- 0.088 -> 0.033 over 8 epochs, against 0.20 -> 0.13 with FEMBA's affine
  -- (x + 20) / 40, the default mode; see mspt(1) for the four modes)
  input_normalization = { normalize = true, mode = "quantile" },
}

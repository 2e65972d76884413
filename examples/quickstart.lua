-- Quick start: a small FEMBA pretrained by masked reconstruction on the
-- built-in synthetic EEG (22 channels x 1280 samples at 256 Hz), so mspt
-- runs on a fresh machine with no data.
--
--   ./mspt run examples/quickstart.lua
--   ./mspt run examples/quickstart.lua optimizer.lr=1e-3 trainer.max_epochs=5
local mspt = require "mspt"

return {
  name = "quickstart",
  seed = 42,
  run_dir = mspt.env("MSPT_RUN_DIR", "runs/quickstart"),

  model = {
    _target_ = "femba",
    num_channels = 22, seq_length = 1280, patch_size = { 2, 16 },
    embed_dim = 16, num_blocks = 1, exp = 2,
  },
  criterion = { _target_ = "smooth_l1", beta = 1.0 },
  optimizer = { _target_ = "adamw", lr = 1e-3, weight_decay = 0.01 },
  scheduler = { _target_ = "cosine", warmup_epochs = 1, lr_min = 1e-5 },
  data = { _target_ = "synthetic", windows = 256, channels = 22, samples = 1280 },
}

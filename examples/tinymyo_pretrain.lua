-- TinyMyo pretraining as BioFoundation runs it: config/experiment/TinyMyo_pretrain.yaml
-- with what it inherits (config/defaults.yaml, model/TinyMyo_pretrain.yaml,
-- scheduler/cosine.yaml, criterion/pretrain_criterion.yaml,
-- data_module/emg_pretrain_data_module.yaml) and what tasks/pretrain_task_EMG.py
-- and models/TinyMyo.py do with them.  "BioFoundation:" notes mark where its
-- code does other than its YAML says, or where mspt cannot be the same.
--
--   DATA_PATH=/data mspt run examples/tinymyo_pretrain.lua
--
-- Data: EMGPretrainDataset directories of .h5 files, each holding a top-level
-- data of shape (n, C, 1000): $DATA_PATH/emg2pose/h5/ (16 channels) and
-- $DATA_PATH/ninapro/DB6/h5/, DB7/h5/ (padded with zero channels to 16).
local mspt = require "mspt"
local root = mspt.env("DATA_PATH")

return {
  name = "TinyMyo_pretrain",
  seed = 42,                                   -- defaults.yaml

  -- model/TinyMyo_pretrain.yaml in encoders.transformer's terms (mspt(1),
  -- "TinyMyo settings"): the state_dict names are TinyMyo's.  rope = "none":
  -- TinyMyo's rotary turns q and k by head index, the same for both, which
  -- leaves attention unchanged (the published model has no positions).
  model = {
    _target_ = "transformer",
    num_channels = 16, seq_length = 1000, patch_size = 20,   -- in_chans, img_size
    embed_dim = 192, depth = 8, num_heads = 3, mlp_ratio = 4, qkv_bias = true,
    drop_rate = 0.1, attn_drop_rate = 0.1, drop_path_rate = 0.1,
    drop_path_schedule = "constant", rope = "none", norm_eps = 1e-5,
    init = "tinymyo",
  },

  -- PretrainCriterion("smooth_l1"): masked + unmasked_loss_coeff × unmasked.
  -- BioFoundation: train_loss logs only the masked part while val_loss logs
  -- the sum; mspt logs the optimised sum as both.
  criterion = { _target_ = "smooth_l1", beta = 1.0 },

  -- BioFoundation: pretrain_task_EMG.py builds torch.optim.AdamW(params, lr,
  -- weight_decay) and drops the YAML's betas [0.9, 0.98]: torch's defaults
  -- (0.9, 0.999), eps 1e-8 apply.  AdamW decays every parameter.
  optimizer = {
    _target_ = "adamw", lr = 1e-4, weight_decay = 0.01,
    betas = { 0.9, 0.999 }, eps = 1e-8,
  },

  -- scheduler/cosine.yaml with the experiment's values: timm's cosine with
  -- total_training_opt_steps = max_epochs = 50, so one "step" per epoch:
  -- 10 warmup epochs from 1e-6, cosine to 1e-6 over 50 epochs, in epochs.
  -- BioFoundation: Lightning steps it after each epoch with the epoch just
  -- finished (interval "epoch", scheduler.step(epoch = current_epoch)), so
  -- epoch e >= 1 trains at the rate of epoch e - 1: epoch_lag = 1.
  scheduler = {
    _target_ = "cosine", t_initial = 50, t_in_epochs = true,
    warmup_t = 10, warmup_lr_init = 1e-6, lr_min = 1e-6,
    epoch_lag = 1,
  },

  -- emg_pretrain_data_module.yaml: three datasets, each split 80/20 on its
  -- own (BioFoundation: torch's random_split, another partition than mspt's).
  -- Unlike BioFoundation, the zero channels padding adds are never masked
  -- into the loss (mspt(1), DATASETS).
  data = {
    { _target_ = "emg_h5", data_dir = root .. "/emg2pose/h5/" },
    { _target_ = "emg_h5", data_dir = root .. "/ninapro/DB6/h5/", pad_up_to_max_chans = 16 },
    { _target_ = "emg_h5", data_dir = root .. "/ninapro/DB7/h5/", pad_up_to_max_chans = 16 },
  },

  trainer = {
    max_epochs = 50,
    -- batch_size is per device, as in Lightning (gpus: -1 takes them all)
    batch_size = 128,
    train_val_split = 0.8,
    gradient_clip_val = 3,
    accumulate_grad_batches = 8,
    log_every_n_steps = 50,                    -- defaults.yaml
    num_workers = 8,
    -- BioFoundation: its validation loader drops a last partial batch;
    -- mspt validates every window.
    save_last = true, save_top_k = 1, monitor = "val_loss", mode = "min",
  },

  -- per-window masks of (1, 20) patches, half of them, as generate_mask
  -- (BioFoundation: torch.randperm, another random stream than mspt's)
  masking = { patch_size = { 1, 20 }, masking_ratio = 0.5, unmasked_loss_coeff = 0.1 },

  -- MinMaxNormalization: each channel of each window to [-1, 1]
  input_normalization = { normalize = true, mode = "minmax" },

  -- the task plots windows 6, 16 and 30 of its first validation batch
  plots = { samples = { 6, 16, 30 } },
}

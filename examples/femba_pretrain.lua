-- FEMBA pretraining as BioFoundation runs it: config/experiment/FEMBA_pretrain.yaml
-- with what it inherits (config/defaults.yaml, model/FEMBA_pretrain.yaml,
-- scheduler/multi_step_lr.yaml, criterion/pretrain_criterion.yaml,
-- data_module/pretrain_data_module.yaml) and what tasks/pretrain_task.py does
-- with them.  "BioFoundation:" notes mark where its code does other than its
-- YAML says, or where mspt cannot be the same.
--
--   DATA_PATH=/data mspt run examples/femba_pretrain.lua
--
-- Data: the TUEG files of make_datasets/make_tueg_bipolar.py,
-- $DATA_PATH/TUEG/TUEG_22_channels_*.h5 (a group per session holding X of
-- shape (n, 22, 1280), float16, read as float32 windows in memory).
local mspt = require "mspt"

local files = mspt.glob(mspt.env("DATA_PATH") .. "/TUEG/TUEG_22_channels_*.h5")
if #files == 0 then
  error("femba_pretrain.lua: no TUEG_22_channels_*.h5 under $DATA_PATH/TUEG")
end
-- One dataset per file, as pretrain_data_module.yaml lists them: each file is
-- split 80/20 on its own, then the parts are concatenated (random_split per
-- dataset).  BioFoundation: torch's random_split draws another (seeded)
-- partition than mspt's; the proportions are the same.  mspt takes up to 32
-- datasets: with more files give one { _target_ = "hdf5", path = dir }.
local data = {}
for i, f in ipairs(files) do
  data[i] = { _target_ = "hdf5", path = f }
end

return {
  name = "FEMBA_pretrain",
  seed = 42,                                   -- defaults.yaml

  -- model/FEMBA_pretrain.yaml; patch (2, 16), stride = patch and
  -- kernel_dec (31, 31) are FEMBA's own defaults
  model = {
    _target_ = "femba",
    num_channels = 22, seq_length = 1280, embed_dim = 79, num_blocks = 4, exp = 4,
  },

  -- PretrainCriterion(loss_type = "smooth_l1") over the masked entries
  criterion = { _target_ = "smooth_l1", beta = 1.0 },

  -- BioFoundation: pretrain_task.py builds torch_optimizer.Lamb(params, lr)
  -- and nothing else, so Lamb's own defaults apply whatever the YAML says:
  -- betas (0.9, 0.999), eps 1e-6, weight_decay 0, clamp_value 10, no debias.
  optimizer = {
    _target_ = "lamb", lr = 1e-3,
    betas = { 0.9, 0.999 }, eps = 1e-6, weight_decay = 0, clamp_value = 10,
  },

  -- multi_step_lr.yaml with the experiment's gamma 0.1 (the YAML's 0.5 is
  -- overridden); the task steps it every update ("interval: step"), so the
  -- milestones "200000+400000" count optimizer updates; warmup_iter -1 is none.
  scheduler = {
    _target_ = "multistep", milestones = { 200000, 400000 }, gamma = 0.1,
    warmup_iter = 0, t_in_epochs = false,
  },

  data = data,

  trainer = {
    -- BioFoundation: max_epochs 2 from the experiment, and defaults.yaml's
    -- max_steps 500000 still bounds the run (Lightning stops at either).
    max_epochs = 2, max_steps = 500000,
    -- batch_size is per device, as in Lightning: the experiment's 256 on
    -- gpus: 4 is a global batch of 1024; on one machine say batch_size=1024,
    -- or run 4 ranks (mpirun -np 4 mspt run ...).
    batch_size = 256,
    train_val_split = 0.8,                     -- train_val_split_ratio
    gradient_clip_val = 1,                     -- norm clipping, as Lightning's default
    accumulate_grad_batches = 1,
    log_every_n_steps = 25,
    num_workers = 8,                           -- data prefetch threads here
    -- BioFoundation: its validation loader drops a last partial batch
    -- (drop_last = True); mspt validates every window.
    -- model_checkpoint (the experiment's, replacing defaults.yaml's val_psnr)
    save_last = true, save_top_k = 1, monitor = "val_loss", mode = "min",
  },

  -- pretrain_task.py draws one set of (2, 16) rectangles per batch and masks
  -- every window of the batch with it: per_batch.  BioFoundation: its mask
  -- comes from torch.randperm, another random stream than mspt's.
  masking = { patch_size = { 2, 16 }, masking_ratio = 0.6, per_batch = true },

  -- RobustQuartileNormalize(-20, 20): (x + 20) / 40, computed by no quantile
  -- (BioFoundation's key names are accepted as they are)
  input_normalization = {
    normalize = true, mode = "affine",
    quartile_normalization_lower_val = -20, quartile_normalization_upper_val = 20,
  },
}

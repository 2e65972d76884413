#!/usr/bin/python3
"""200-step loss-curve parity: `mspt run` against the PyTorch reference
(scripts/reference_models.py) with the same initial weights, data, masks,
AdamW, cosine schedule with warmup and gradient clipping.

    /usr/bin/python3 scripts/curve_parity.py --build /tmp/build-xxx [--model femba]

How the two runs are made identical:
  init    PyTorch builds the model; its state_dict (safetensors) is the
          experiment's pretrained_checkpoint_path.
  data    `mspt reconstruct EXP --windows N` writes the N = steps × batch
  masks   training windows after normalisation ("input") and their masks
          ("mask"), in the order and with the mask stream `mspt run` uses
          (epoch 1, one epoch of exactly `steps` batches), so the trainer
          draws the very masks PyTorch reads.
  update  torch.optim.AdamW with the experiment's lr, betas, eps and weight
          decay on every parameter; timm's cosine schedule with linear
          warmup, set before each update; clip_grad_norm_(1.0).
Both train in float32 on 2 threads.  Every step is logged
(log_every_n_steps = 1) and compared; the script exits 1 if any step
differs by more than --tol (1%).  Takes ~1 min per model.
"""
import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402
import safetensors_io  # noqa: E402

MODELS = {
    "femba": (dict(num_channels=8, seq_length=128, patch_size=(2, 16), embed_dim=8,
                   num_blocks=2, exp=2, kernel_dec=(3, 3)),
              "{ _target_ = 'femba', num_channels = 8, seq_length = 128, "
              "patch_size = { 2, 16 }, embed_dim = 8, num_blocks = 2, exp = 2, "
              "kernel_dec = { 3, 3 } }"),
    "transformer": (dict(num_channels=8, seq_length=128, patch_size=16, embed_dim=32,
                         depth=2, num_heads=2),
                    "{ _target_ = 'transformer', num_channels = 8, seq_length = 128, "
                    "patch_size = 16, embed_dim = 32, depth = 2, num_heads = 2 }"),
}
LR, WD, WARMUP, LR_INIT, LR_MIN, CLIP, BATCH = 1e-3, 0.05, 20, 1e-5, 1e-5, 1.0, 8

EXPERIMENT = """return {{
  name = "curve_parity", seed = 7, threads = 2,
  model = {model},
  criterion = {{ _target_ = "smooth_l1" }},
  optimizer = {{ _target_ = "adamw", lr = {lr}, weight_decay = {wd} }},
  scheduler = {{ _target_ = "cosine", warmup_t = {warmup}, warmup_lr_init = {lr_init},
                lr_min = {lr_min} }},
  data = {{ _target_ = "synthetic", windows = {windows}, channels = 8, samples = 128 }},
  trainer = {{ batch_size = {batch}, max_epochs = 1, max_steps = {steps},
              train_val_split = 1.0, gradient_clip_val = {clip},
              log_every_n_steps = 1, save_top_k = 0, save_last = false,
              num_workers = 0, progress_bar = "off" }},
  masking = {{ patch_size = {{ 1, 16 }}, masking_ratio = 0.5 }},
  input_normalization = {{ normalize = true }},
}}
"""


def cosine_lr(step, steps):
    """timm's CosineLRScheduler at update `step` (warmup_prefix false)."""
    if step < WARMUP:
        return LR_INIT + step * ((LR - LR_INIT) / WARMUP)
    return LR_MIN + 0.5 * (LR - LR_MIN) * (1 + math.cos(math.pi * step / steps))


def mspt(build, *args):
    r = subprocess.run([os.path.join(build, "mspt")] + list(args),
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("mspt %s failed: %s" % (args[0], r.stderr.strip()))
    return r.stdout


def torch_curve(kind, kw, init, data, steps):
    model = rm.build(kind, **kw)
    model.load_state_dict(init)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    x, mask = data["input"], data["mask"].bool()
    losses = []
    for k in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(k, steps)
        xb, mb = x[k * BATCH:(k + 1) * BATCH], mask[k * BATCH:(k + 1) * BATCH]
        recon, _ = model(xb.masked_fill(mb, 0.0), mb)
        loss = rm.masked_smooth_l1(recon, xb, mb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def compare(kind, build, work, steps, tol):
    kw, model_lua = MODELS[kind]
    exp = os.path.join(work, kind + ".lua")
    with open(exp, "w") as f:
        f.write(EXPERIMENT.format(model=model_lua, lr=LR, wd=WD, warmup=WARMUP,
                                  lr_init=LR_INIT, lr_min=LR_MIN, windows=steps * BATCH,
                                  batch=BATCH, steps=steps, clip=CLIP))
    torch.manual_seed(0)
    init = rm.build(kind, **kw).state_dict()
    init_path = os.path.join(work, kind + "_init.safetensors")
    safetensors_io.save(init_path, init)

    data_path = os.path.join(work, kind + "_data.safetensors")
    mspt(build, "reconstruct", exp, "--weights", init_path, "--windows",
         str(steps * BATCH), "--out", data_path)
    data, _ = safetensors_io.load(data_path, torch=True)
    # the two models agree at init on the exported data
    model = rm.build(kind, **kw)
    model.load_state_dict(init)
    with torch.no_grad():
        m = data["mask"].bool()
        recon, _ = model(data["input"].masked_fill(m, 0.0), m)
    err = ((recon - data["reconstruction"]).abs().max() /
           data["reconstruction"].abs().max()).item()

    run_dir = os.path.join(work, kind + "_run")
    mspt(build, "run", exp, "run_dir=" + run_dir, "pretrained_checkpoint_path=" + init_path)
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        ours = {int(r["step"]): float(r["train_loss"]) for r in csv.DictReader(f)
                if r["train_loss"]}
    ref = torch_curve(kind, kw, init, data, steps)

    rel = [abs(ours[k + 1] - ref[k]) / abs(ref[k]) for k in range(steps)]
    worst = max(range(steps), key=lambda k: rel[k])
    print("%s: %d parameters; reconstruction at init differs by %.1e (max rel)" %
          (kind, sum(v.numel() for v in init.values()), err))
    print("  step    mspt loss   PyTorch loss   rel diff")
    for k in sorted({0, 9, 49, 99, 149, steps - 1, worst}):
        if k < steps:
            print("  %4d  %11.6f  %13.6f   %.2e" % (k + 1, ours[k + 1], ref[k], rel[k]))
    print("  max rel diff %.2e at step %d; mean %.2e; loss %.4f -> %.4f" %
          (rel[worst], worst + 1, sum(rel) / steps, ref[0], ref[-1]))
    return rel[worst] <= tol


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="mspt build directory")
    ap.add_argument("--model", choices=["femba", "transformer", "both"], default="both")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--tol", type=float, default=0.01)
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    work = a.keep or tempfile.mkdtemp(prefix="mspt-curve-")
    os.makedirs(work, exist_ok=True)
    kinds = ["femba", "transformer"] if a.model == "both" else [a.model]
    good = all([compare(k, a.build, work, a.steps, a.tol) for k in kinds])
    if not a.keep:
        subprocess.run(["rm", "-rf", work])
    print("PASS" if good else "FAIL", "(tolerance %.0e at every step)" % a.tol)
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()

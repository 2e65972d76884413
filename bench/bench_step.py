#!/usr/bin/python3
"""bench_step.py — bench/bench_step.c's training step in PyTorch (Debian's
python3-torch 1.13, scripts/reference_models.py): robust normalisation
(torch.quantile), patch mask, masked input, forward, masked smooth-L1,
backward, clip_grad_norm_(1.0), AdamW step, zero grad.

    /usr/bin/python3 bench/bench_step.py femba|transformer [--steps N] [--threads N]

Prints the median of N timed steps after 2 warm-up steps and the process's
peak RSS (ru_maxrss): run one model per process.
"""
import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "scripts"))
import reference_models as rm  # noqa: E402

C, T = 22, 1280
SPECS = {
    "femba": (dict(num_channels=C, seq_length=T, embed_dim=35, num_blocks=2, exp=4), 16),
    "transformer": (dict(num_channels=C, seq_length=T, patch_size=40, embed_dim=192,
                         depth=8, num_heads=3), 8),
}


def robust_normalize(x, lower=0.025, upper=0.975):
    lo = torch.quantile(x, lower, dim=-1, keepdim=True)
    hi = torch.quantile(x, upper, dim=-1, keepdim=True)
    return (x - lo) / (hi - lo + 1e-8)


def patch_mask(B, ph=1, pw=64, ratio=0.5):
    """Per window, ⌊GH·GW·ratio⌋ of the (ph × pw) patches, as mspt's masker."""
    GH, GW = C // ph, T // pw
    k = int(GH * GW * ratio + 1e-9)
    m = torch.zeros(B, GH * GW, dtype=torch.bool)
    for b in range(B):
        m[b, torch.randperm(GH * GW)[:k]] = True
    m = m.view(B, GH, 1, GW, 1).expand(B, GH, ph, GW, pw).reshape(B, GH * ph, GW * pw)
    out = torch.zeros(B, C, T, dtype=torch.bool)
    out[:, :GH * ph, :GW * pw] = m
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(SPECS))
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    kw, B = SPECS[a.model]
    model = rm.build(a.model, **kw)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    raw = torch.randn(B, C, T) * 20
    times, loss = [], None
    for it in range(-2, a.steps):
        t0 = time.perf_counter()
        target = robust_normalize(raw.clone())
        mask = patch_mask(B)
        x = target.masked_fill(mask, 0.0)
        recon, _ = model(x, mask)
        loss = rm.masked_smooth_l1(recon, target, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if it >= 0:
            times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch %s B=%d threads=%d params=%d steps=%d median_ms=%.1f min_ms=%.1f "
          "peak_rss_mb=%.0f loss=%.4f" % (a.model, B, a.threads,
                                           sum(p.numel() for p in model.parameters()),
                                           n, median, times[0], rss, loss.item()))


if __name__ == "__main__":
    main()

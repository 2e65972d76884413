#!/usr/bin/python3
"""Fixtures for tests/test_task.c: robust quartile normalisation
(torch.quantile, linear interpolation) and clip_grad_norm_.

Run with Debian's python3 (python3-torch): /usr/bin/python3 scripts/gen_fixtures_task.py
"""
import torch

from fixtures import write_fixture

torch.manual_seed(0)
# RobustQuartileNormalize of the reference pipeline, per sample and channel
x = torch.randn(3, 5, 37) * 20 + 3
x[0, 1, 4] = 500.0  # an outlier the quantiles ignore
lo = torch.quantile(x, 0.025, dim=-1, keepdim=True)
hi = torch.quantile(x, 0.975, dim=-1, keepdim=True)
norm = (x - lo) / (hi - lo + 1e-8)

# clip_grad_norm_ on two parameters
p1 = torch.nn.Parameter(torch.zeros(4, 7))
p2 = torch.nn.Parameter(torch.zeros(9))
g1 = torch.randn(4, 7)
g2 = torch.randn(9) * 3
p1.grad = g1.clone()
p2.grad = g2.clone()
total = torch.nn.utils.clip_grad_norm_([p1, p2], max_norm=2.0)

write_fixture("task.txt", [
    ("x", x), ("normalized", norm),
    ("g1", g1), ("g2", g2), ("clipped1", p1.grad), ("clipped2", p2.grad),
    ("total_norm", total.reshape(1)),
])

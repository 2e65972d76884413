#!/usr/bin/python3
"""Fixtures for tests/test_task.c: the four input normalisations and
clip_grad_norm_.

The affine and min-max normalisations are BioFoundation's own classes
(util/train_utils.py: RobustQuartileNormalize, MinMaxNormalization),
imported from the reference tree (BIOFOUNDATION, default
../shared/ref/biofoundation beside the repository) with a stub for the
pytorch_lightning import it does not use here; zscore is LUNA's
ChannelWiseNormalize (tasks/pretrain_task_LUNA.py, which needs Lightning
to import), restated; quantile is per-channel robust scaling by
torch.quantile (mspt's own, no reference class).

Run with Debian's python3 (python3-torch): /usr/bin/python3 scripts/gen_fixtures_task.py
"""
import os
import sys
import types

import torch

from fixtures import write_fixture

REF = os.environ.get("BIOFOUNDATION", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "ref",
    "biofoundation"))
sys.path.insert(0, REF)
for name in ("pytorch_lightning", "pytorch_lightning.callbacks",
             "pytorch_lightning.callbacks.model_checkpoint"):
    sys.modules.setdefault(name, types.ModuleType(name))
sys.modules["pytorch_lightning.callbacks.model_checkpoint"].ModelCheckpoint = object
from util.train_utils import MinMaxNormalization, RobustQuartileNormalize  # noqa: E402


def channelwise_normalize(tensor, eps=1e-8):
    """tasks/pretrain_task_LUNA.py ChannelWiseNormalize.__call__"""
    mean = tensor.mean(dim=2, keepdim=True)
    std = tensor.std(dim=2, keepdim=True)
    return (tensor - mean) / (std + eps)

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

# the other three on windows of EEG-like scale (uV), a constant channel
# and a channel of one spike among them
torch.manual_seed(1)
xe = torch.randn(3, 4, 128) * 30 + 5
xe[1, 2] = 7.25
xe[2, 3, :] = 0.0
xe[2, 3, 100] = 400.0  # the rest of that channel is 0

write_fixture("task.txt", [
    ("x", x), ("normalized", norm),
    ("xe", xe),
    ("affine", RobustQuartileNormalize(-20, 20)(xe)),
    ("affine_odd", RobustQuartileNormalize(-3.3, 71.9)(xe)),
    ("zscore", channelwise_normalize(xe)),
    ("minmax", MinMaxNormalization()(xe)),
    ("g1", g1), ("g2", g2), ("clipped1", p1.grad), ("clipped2", p2.grad),
    ("total_norm", total.reshape(1)),
])

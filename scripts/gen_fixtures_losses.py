"""PyTorch reference values for the loss plugin components l1, mse and
smooth_l1 (tests/test_losses.c).

    /usr/bin/python3 scripts/gen_fixtures_losses.py

Writes tests/fixtures/losses.txt: pred, target, mask (0/1 floats), and for
each case <case>_<all|mask> (the scalar loss) with <case>_<all|mask>_gp (its
gradient w.r.t. pred).  "mask" is the pretrain task's
criterion(pred[mask], target[mask]); "all" uses every element.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import write_fixture  # noqa: E402

torch.manual_seed(20250317)

CASES = [
    ("l1", lambda p, t: F.l1_loss(p, t)),
    ("mse", lambda p, t: F.mse_loss(p, t)),
    ("sl1_b0", lambda p, t: F.smooth_l1_loss(p, t, beta=0.0)),
    ("sl1_b0p5", lambda p, t: F.smooth_l1_loss(p, t, beta=0.5)),
    ("sl1_b1", lambda p, t: F.smooth_l1_loss(p, t, beta=1.0)),
    ("sl1_b2", lambda p, t: F.smooth_l1_loss(p, t, beta=2.0)),
]


def main():
    # odd shape, batch > 1; |pred - target| spans 0..~4 so every beta sees
    # both the quadratic and the linear branch
    shape = (2, 3, 17)
    pred = torch.rand(shape) * 4 - 2
    target = torch.rand(shape) * 4 - 2
    mask = torch.rand(shape) < 0.4
    out = [("pred", pred), ("target", target), ("mask", mask.float())]
    for name, fn in CASES:
        for sel, m in (("all", torch.ones(shape, dtype=torch.bool)),
                       ("mask", mask)):
            p = pred.clone().requires_grad_(True)
            y = fn(p[m], target[m])
            y.backward()
            out += [("%s_%s" % (name, sel), y.reshape(1)),
                    ("%s_%s_gp" % (name, sel), p.grad)]
    write_fixture("losses.txt", out)


if __name__ == "__main__":
    main()

"""PyTorch reference values for the pointwise, shape, reduction, mask,
normalisation and loss ops (tests/test_ops_{pointwise,shape,loss}.c).

    /usr/bin/python3 scripts/gen_fixtures_pointwise.py

Writes tests/fixtures/{pointwise,shape,loss}.txt.  Every gradient is the
vector-Jacobian product with a stored cotangent r_<name> (losses: 1).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import write_fixture  # noqa: E402

torch.manual_seed(20240611)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def vjp(name, fn, inputs, out_list):
    """out_list gets x_<name>_i, y_<name>, r_<name>, g_<name>_i."""
    xs = [leaf(x) for x in inputs]
    y = fn(*xs)
    r = torch.randn_like(y)
    y.backward(r)
    for i, x in enumerate(xs):
        out_list.append(("x_%s_%d" % (name, i), x))
    out_list += [("y_" + name, y), ("r_" + name, r)]
    for i, x in enumerate(xs):
        out_list.append(("g_%s_%d" % (name, i), x.grad))


def pointwise():
    out = []
    x = torch.randn(3, 5, 7) * 3
    x.view(-1)[:4] = torch.tensor([0.0, -8.0, 8.0, 1e-3])
    vjp("gelu", F.gelu, [x], out)
    vjp("silu", F.silu, [x], out)
    xs = torch.randn(3, 5, 7) * 10  # crosses softplus' threshold 20
    xs.view(-1)[:5] = torch.tensor([20.0, 20.5, 19.5, -30.0, 0.0])
    vjp("softplus", F.softplus, [xs], out)
    vjp("exp", torch.exp, [torch.randn(3, 5, 7)], out)

    a, b = torch.randn(2, 3, 5), torch.randn(3, 5)
    vjp("add", torch.add, [a, b], out)
    vjp("sub", torch.sub, [a, b], out)
    vjp("mul", torch.mul, [a, b], out)
    vjp("mul_same", torch.mul, [a, torch.randn(2, 3, 5)], out)
    vjp("scale", lambda t: t * 0.37, [a], out)
    vjp("add_scalar", lambda t: t - 1.25, [a], out)

    D = 13
    xl = torch.randn(3, 5, D) * 2 + 4  # an offset, as raw signals have
    w, bb = torch.randn(D), torch.randn(D)
    vjp("layernorm", lambda t, w_, b_: F.layer_norm(t, (D,), w_, b_, 1e-5),
        [xl, w, bb], out)
    vjp("layernorm_plain", lambda t: F.layer_norm(t, (D,), None, None, 1e-5),
        [xl], out)
    write_fixture("pointwise.txt", out)


def shape():
    out = []
    vjp("permute", lambda t: t.permute(2, 0, 3, 1).contiguous(),
        [torch.randn(2, 3, 4, 5)], out)
    vjp("transpose", lambda t: t.transpose(0, 2).contiguous(),
        [torch.randn(3, 4, 5)], out)
    vjp("flip", lambda t: torch.flip(t, [1]), [torch.randn(2, 3, 4)], out)
    vjp("narrow", lambda t: t.narrow(1, 2, 3).contiguous(),
        [torch.randn(3, 7, 4)], out)
    # split along dim 1 into (2, 4, 1), pieces re-joined out of order
    vjp("split", lambda t: torch.cat([p for p in
                                      torch.split(t, [2, 4, 1], 1)][::-1], 1),
        [torch.randn(3, 7, 4)], out)
    vjp("cat", lambda a, b, c: torch.cat([a, b, c], 1),
        [torch.randn(2, 3, 4), torch.randn(2, 1, 4), torch.randn(2, 5, 4)],
        out)
    x = torch.randn(3, 5, 7)
    vjp("sum", lambda t: t.sum().reshape(1), [x], out)
    vjp("mean", lambda t: t.mean().reshape(1), [x], out)
    vjp("mean_dim1", lambda t: t.mean(1), [x], out)
    vjp("mean_dimlast", lambda t: t.mean(-1), [x], out)
    mask = torch.rand(3, 5, 7) < 0.4
    out.append(("mask", mask.float()))
    vjp("masked_select", lambda t: torch.masked_select(t, mask), [x], out)
    vjp("masked_fill", lambda t: t.masked_fill(mask, 0.5), [x], out)
    row_mask = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1],
                            dtype=torch.bool).reshape(3, 5)
    out.append(("row_mask", row_mask.float()))
    vjp("replace_rows", lambda t, v: torch.where(row_mask[..., None],
                                                 v.expand_as(t), t),
        [x, torch.randn(1, 1, 7)], out)
    write_fixture("shape.txt", out)


def loss():
    out = []
    pred = torch.randn(4, 5, 9) * 1.5
    target = torch.randn(4, 5, 9) * 1.5
    target.view(-1)[:12] = pred.view(-1)[:12]  # exact zeros of d
    mask = torch.rand(4, 5, 9) < 0.4
    mask.view(-1)[:12] = True
    out += [("pred", pred), ("target", target), ("mask", mask.float())]
    cases = [("l1", lambda p, t: F.l1_loss(p, t)),
             ("mse", lambda p, t: F.mse_loss(p, t)),
             ("smooth_l1", lambda p, t: F.smooth_l1_loss(p, t, beta=1.0)),
             ("smooth_l1_b05", lambda p, t: F.smooth_l1_loss(p, t, beta=0.5))]
    for name, fn in cases:
        for sel in ("all", "masked"):
            p, t = leaf(pred), leaf(target)
            y = fn(p[mask], t[mask]) if sel == "masked" else fn(p, t)
            y.backward()
            tag = "%s_%s" % (name, sel)
            out += [("y_" + tag, y.reshape(1)), ("gp_" + tag, p.grad),
                    ("gt_" + tag, t.grad)]
    write_fixture("loss.txt", out)


if __name__ == "__main__":
    pointwise()
    shape()
    loss()

"""PyTorch reference fixtures for the fused ops (tests/test_ops_fused.c):
depthwise causal conv1d, attention, rotary embedding, selective scan.

    /usr/bin/python3 scripts/gen_fixtures_fused.py

Inputs are drawn in float32 (what the C test reads back), the reference is
computed in float64 from them; each file holds the inputs, a cotangent gy,
the output y and the gradients of sum(gy * y) for every input.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import write_fixture  # noqa: E402


def leaf(t):
    return t.to(torch.float32).to(torch.float64).requires_grad_(True)


def grads(y, gy, inputs):
    y.backward(gy.to(torch.float64))
    return [t.grad for t in inputs]


def dwconv():
    B, L, D, K = 2, 7, 5, 4
    x, w, b = leaf(torch.randn(B, L, D)), leaf(torch.randn(D, 1, K) * 0.5), \
        leaf(torch.randn(D))
    y = F.conv1d(x.transpose(1, 2), w, b, padding=K - 1,
                 groups=D)[..., :L].transpose(1, 2)
    gy = torch.randn(B, L, D)
    gx, gw, gb = grads(y, gy, [x, w, b])
    write_fixture("fused_dwconv.txt", [("x", x), ("w", w), ("b", b),
                                       ("gy", gy), ("y", y), ("gx", gx),
                                       ("gw", gw), ("gb", gb)])


def attention():
    B, H, N, hd = 2, 2, 13, 8
    scale = hd ** -0.5
    q, k, v = (leaf(torch.randn(B, H, N, hd)) for _ in range(3))
    p = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    y = p @ v
    gy = torch.randn(B, H, N, hd)
    gq, gk, gv = grads(y, gy, [q, k, v])
    write_fixture("fused_attention.txt", [
        ("q", q), ("k", k), ("v", v), ("scale", [scale]), ("gy", gy),
        ("y", y), ("gq", gq), ("gk", gk), ("gv", gv)])


def rotary():
    """Adjacent pairs (2i, 2i+1) rotated by n * base^(-2i/hd), as
    rotary-embedding-torch's rotate_half with interleaved frequencies."""
    B, H, N, hd, base = 2, 2, 13, 8, 10000.0
    x = leaf(torch.randn(B, H, N, hd))
    inv = base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(N, dtype=torch.float64)[:, None] * inv[None, :]
    ang = ang.repeat_interleave(2, dim=-1)           # (N, hd): i i j j ...
    x1, x2 = x[..., 0::2], x[..., 1::2]
    rot = torch.stack((-x2, x1), dim=-1).reshape(x.shape)  # rotate_half
    y = x * ang.cos() + rot * ang.sin()
    gy = torch.randn(B, H, N, hd)
    gx, = grads(y, gy, [x])
    write_fixture("fused_rotary.txt", [("x", x), ("base", [base]),
                                       ("gy", gy), ("y", y), ("gx", gx)])


def scan_ref(u, dt, A, Bm, Cm, Dskip, z):
    """Mamba selective scan, channels last, a plain loop over time."""
    B, L, D = u.shape
    N = A.shape[1]
    h = torch.zeros(B, D, N, dtype=u.dtype)
    ys = []
    for t in range(L):
        dA = torch.exp(dt[:, t, :, None] * A[None])           # (B, D, N)
        h = dA * h + (dt[:, t] * u[:, t])[:, :, None] * Bm[:, t, None, :]
        y = (h * Cm[:, t, None, :]).sum(-1) + Dskip * u[:, t]
        ys.append(y * F.silu(z[:, t]))
    return torch.stack(ys, dim=1)


def scan(name, B, L, D, N):
    u, z = leaf(torch.randn(B, L, D)), leaf(torch.randn(B, L, D))
    dt = leaf(F.softplus(torch.randn(B, L, D) - 1.0))
    A_log = torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(D, 1)
    A = leaf(-torch.exp(A_log + 0.1 * torch.randn(D, N)))
    Bm, Cm = leaf(torch.randn(B, L, N)), leaf(torch.randn(B, L, N))
    Dskip = leaf(torch.randn(D))
    y = scan_ref(u, dt, A, Bm, Cm, Dskip, z)
    gy = torch.randn(B, L, D)
    g = grads(y, gy, [u, dt, A, Bm, Cm, Dskip, z])
    names = ["u", "dt", "A", "Bm", "Cm", "Dskip", "z"]
    write_fixture(name, list(zip(names, [u, dt, A, Bm, Cm, Dskip, z])) +
                  [("gy", gy), ("y", y)] +
                  list(zip(["g" + n for n in names], g)))


if __name__ == "__main__":
    torch.manual_seed(0)
    dwconv()
    attention()
    rotary()
    scan("fused_scan.txt", 2, 7, 5, 3)
    # several checkpoint chunks (16 steps) and a partial channel tile (16)
    scan("fused_scan_long.txt", 1, 35, 18, 4)

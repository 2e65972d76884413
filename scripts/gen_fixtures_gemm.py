#!/usr/bin/python3
"""PyTorch fixtures for tests/test_ops_gemm.c: linear, matmul, bmm, conv2d,
conv_transpose2d, forward outputs and gradients w.r.t. every input.

Each case k writes tensors "k.<input>" (float32 inputs), "k.gy" (the
cotangent), "k.y" = op(inputs) and "k.g<input>" = d(Σ y·gy)/d(input),
computed in float64 from the float32 inputs.  Run with Debian's python3:
    /usr/bin/python3 scripts/gen_fixtures_gemm.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import write_fixture  # noqa: E402

torch.manual_seed(20240611)


def rand(*shape):
    return (torch.rand(*shape) * 2 - 1).to(torch.float32)


def case(tag, fn, inputs):
    """inputs: list of (name, float32 tensor or None); fn takes doubles."""
    ins = [(n, t) for n, t in inputs if t is not None]
    leaves = {n: t.double().requires_grad_(True) for n, t in ins}
    y = fn(**{n: leaves.get(n) for n, _ in inputs})
    gy = rand(*y.shape)
    (y * gy.double()).sum().backward()
    out = [("%s.%s" % (tag, n), t) for n, t in ins]
    out.append(("%s.gy" % tag, gy))
    out.append(("%s.y" % tag, y.detach()))
    out += [("%s.g%s" % (tag, n), leaves[n].grad) for n, _ in ins]
    return out


def linear_cases():
    t = []
    t += case("bias", lambda x, w, b: F.linear(x, w, b),
              [("x", rand(2, 3, 7)), ("w", rand(5, 7)), ("b", rand(5))])
    t += case("nobias", lambda x, w, b: F.linear(x, w, b),
              [("x", rand(9, 6)), ("w", rand(3, 6)), ("b", None)])
    return t


def matmul_cases():
    t = []
    M, K, N = 5, 7, 3
    for ta in (0, 1):
        for tb in (0, 1):
            a = rand(K, M) if ta else rand(M, K)
            b = rand(N, K) if tb else rand(K, N)
            t += case("mm%d%d" % (ta, tb),
                      lambda a, b, ta=ta, tb=tb: torch.matmul(
                          a.t() if ta else a, b.t() if tb else b),
                      [("a", a), ("b", b)])
    Bt, M, K, N = 3, 4, 6, 5
    for ta in (0, 1):
        for tb in (0, 1):
            a = rand(Bt, K, M) if ta else rand(Bt, M, K)
            b = rand(Bt, N, K) if tb else rand(Bt, K, N)
            t += case("bmm%d%d" % (ta, tb),
                      lambda a, b, ta=ta, tb=tb: torch.bmm(
                          a.transpose(1, 2) if ta else a,
                          b.transpose(1, 2) if tb else b),
                      [("a", a), ("b", b)])
    return t


# (tag, x shape, w shape, bias, stride, padding) — the C test repeats these.
CONV = [
    ("general", (2, 3, 9, 11), (4, 3, 3, 2), True, (2, 1), (1, 2)),
    ("patch", (2, 1, 6, 48), (5, 1, 2, 16), True, (2, 16), (0, 0)),
    ("rowpatch", (3, 1, 3, 120), (6, 1, 1, 40), True, (1, 40), (0, 0)),
    ("nobias", (3, 2, 7, 7), (3, 2, 3, 3), False, (1, 1), (1, 1)),
    ("single", (2, 1, 9, 13), (1, 1, 5, 7), True, (1, 1), (2, 3)),
]
CONVT = [
    ("decoder", (2, 5, 3, 4), (5, 1, 2, 16), True, (2, 16), (0, 0)),
    ("general", (2, 3, 4, 5), (3, 2, 3, 4), True, (2, 3), (1, 1)),
    ("nobias", (3, 2, 5, 5), (2, 3, 3, 3), False, (1, 1), (0, 0)),
]


def conv_cases(fn, table):
    t = []
    for tag, xs, ws, bias, stride, pad in table:
        cout = ws[0] if fn is F.conv2d else ws[1]
        t += case(tag, lambda x, w, b, s=stride, p=pad: fn(x, w, b, s, p),
                  [("x", rand(*xs)), ("w", rand(*ws)),
                   ("b", rand(cout) if bias else None)])
    return t


def main():
    torch.set_default_dtype(torch.float64)
    for f, tensors in (("gemm_linear.txt", linear_cases()),
                       ("gemm_matmul.txt", matmul_cases()),
                       ("gemm_conv2d.txt", conv_cases(F.conv2d, CONV)),
                       ("gemm_convt.txt",
                        conv_cases(F.conv_transpose2d, CONVT))):
        print(write_fixture(f, tensors))


if __name__ == "__main__":
    main()

"""Shared writer for the text fixtures read by tests/fixture.h.

Run the generators with Debian's python3 (python3-torch), e.g.
    /usr/bin/python3 scripts/gen_fixtures_gemm.py
"""
import os

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "tests", "fixtures")


def write_fixture(filename, tensors):
    """tensors: list of (name, torch.Tensor or nested list)."""
    import torch
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    path = os.path.join(FIXTURE_DIR, filename)
    with open(path, "w") as f:
        for name, t in tensors:
            t = torch.as_tensor(t).detach().to(torch.float32).contiguous()
            shape = list(t.shape)
            f.write("tensor %s %d %s\n" % (name, len(shape),
                                           " ".join(str(d) for d in shape)))
            vals = t.reshape(-1).tolist()
            for i in range(0, len(vals), 8):
                f.write(" ".join("%.9g" % v for v in vals[i:i + 8]) + "\n")
    return path

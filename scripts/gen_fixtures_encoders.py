#!/usr/bin/python3
"""Parity fixtures of the encoders (tests/test_encoders.c,
tests/test_reconstruct.sh), from scripts/reference_models.py.

    /usr/bin/python3 scripts/gen_fixtures_encoders.py

encoder_<name>.safetensors, one per small configuration (its config is the
file's "config" metadata, a YAML flow mapping the C test feeds the plugin):
  model.<param>    float32 weights (init, then perturbed so no parameter
                   sits at a special value such as LayerNorm's 1 and 0)
  x                input window (B, C, T), the loss target
  mask             uint8 (B, C, T), 1 = masked: random 1×4 blocks
  reconstruction   model(x with masked entries zeroed, mask)
  embeddings       the encoder's output tokens
  grad.<param>     gradient of F.smooth_l1_loss(recon[mask], x[mask])
  metadata loss    that loss
The file is also a weights, input and mask file for `mspt reconstruct`.
Weights and inputs are float32; everything downstream is computed in
float64 from them, so the fixture holds the exact answer, rounded.

encoder_shapes.safetensors: the state_dict of the full-size models, no
weights: for each key "<model>/<param>" an int64 tensor of its shape, and
the total parameter count in metadata "<model>.numel".
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402
import safetensors_io  # noqa: E402
from fixtures import FIXTURE_DIR  # noqa: E402

CONFIGS = {
    # name: (kind, constructor kwargs, the plugin's config, batch).  FEMBA's
    # dt is drawn larger than Mamba's default (a weight init only, the
    # plugin's config need not say so): with dt ~ 0.01 the selective path
    # barely moves the output and the gradients of x_proj are ~1e-7,
    # differences of large terms that float32 resolves only to ~1e-4.
    "femba": ("femba", dict(num_channels=4, seq_length=64, patch_size=(2, 8),
                            embed_dim=4, num_blocks=2, exp=2, kernel_dec=(3, 3),
                            dt_min=0.05, dt_max=0.5),
              "{num_channels: 4, seq_length: 64, patch_size: [2, 8], "
              "embed_dim: 4, num_blocks: 2, exp: 2, kernel_dec: [3, 3]}", 2),
    # overlapping patches (stride < patch), C not a multiple of the patch
    # height, an asymmetric decoder kernel, a given dt_rank and d_state
    "femba_stride": ("femba", dict(num_channels=5, seq_length=64, patch_size=(2, 8),
                                   stride=(1, 4), embed_dim=3, num_blocks=1, exp=2,
                                   d_state=5, dt_rank=3, kernel_dec=(5, 3),
                                   dt_min=0.05, dt_max=0.5),
                     "{num_channels: 5, seq_length: 64, patch_size: [2, 8], "
                     "stride: [1, 4], embed_dim: 3, num_blocks: 1, exp: 2, "
                     "d_state: 5, dt_rank: 3, kernel_dec: [5, 3]}", 2),
    "transformer": ("transformer", dict(num_channels=3, seq_length=48, patch_size=8,
                                        embed_dim=16, depth=2, num_heads=2,
                                        qkv_bias=True),
                    "{num_channels: 3, seq_length: 48, patch_size: 8, "
                    "embed_dim: 16, depth: 2, num_heads: 2, qkv_bias: true}", 2),
}

FULL = {
    "femba_tiny": ("femba", dict(num_channels=22, seq_length=1280, embed_dim=35,
                                 num_blocks=2, exp=4)),
    "transformer": ("transformer", {}),
}


def block_mask(B, C, T, w=4, ratio=0.5):
    """Random 1×w blocks, per sample: with the Transformer's patch of 8 some
    tokens are only half masked (the any-sample rule)."""
    m = torch.zeros(B, C, T // w, dtype=torch.bool)
    for b in range(B):
        idx = torch.randperm(C * (T // w))[:int(C * (T // w) * ratio)]
        m[b].view(-1)[idx] = True
    return m.repeat_interleave(w, dim=2)


def fixture(name):
    kind, kw, config, B = CONFIGS[name]
    model = rm.build(kind, **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1 * (p.abs().mean() + 0.1))
    model = model.double()
    x = (torch.randn(B, kw["num_channels"], kw["seq_length"]) * 1.5).double()
    mask = block_mask(B, kw["num_channels"], kw["seq_length"])
    recon, emb = model(x.masked_fill(mask, 0.0), mask)
    loss = rm.masked_smooth_l1(recon, x, mask)
    loss.backward()
    out = {}
    for k, p in model.named_parameters():
        out["model." + k] = p.detach().float()
        out["grad." + k] = p.grad.float()
    out.update(x=x.float(), mask=mask.to(torch.uint8),
               reconstruction=recon.detach().float(), embeddings=emb.detach().float())
    path = os.path.join(FIXTURE_DIR, "encoder_%s.safetensors" % name)
    safetensors_io.save(path, out, {"config": config, "loss": "%.9g" % loss.item()})
    print("%s: loss %.6f, %d parameters" % (path, loss.item(),
                                            sum(p.numel() for p in model.parameters())))


def shapes():
    out, meta = {}, {}
    for name, (kind, kw) in FULL.items():
        model = rm.build(kind, **kw)
        sd = model.state_dict()
        for k, v in sd.items():
            out["%s/%s" % (name, k)] = torch.tensor(list(v.shape), dtype=torch.int64)
        meta[name + ".numel"] = str(sum(v.numel() for v in sd.values()))
        print("%s: %s parameters in %d tensors" % (name, meta[name + ".numel"], len(sd)))
    safetensors_io.save(os.path.join(FIXTURE_DIR, "encoder_shapes.safetensors"),
                        out, meta)


if __name__ == "__main__":
    torch.manual_seed(0)
    for n in CONFIGS:
        fixture(n)
    shapes()

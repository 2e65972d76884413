#!/usr/bin/python3
"""TinyMyo parity fixture (tests/test_tinymyo.c), from BioFoundation's own
models/TinyMyo.py and criterion/pretrain_criterion.py, imported unchanged.

    /usr/bin/python3 scripts/gen_fixtures_tinymyo.py [BIOFOUNDATION_DIR]

The reference tree is the argument, else $BIOFOUNDATION_DIR, else
/work/shared/ref/biofoundation.  Debian has neither timm nor einops, so
minimal stand-ins are put into sys.modules before the import: timm's
DropPath, Mlp and trunc_normal_ (timm's semantics: drop_path scaled by
1/keep, Mlp = fc1, act, drop, norm (Identity), fc2, drop; trunc_normal_ by
the inverse CDF, a and b absolute) and einops.rearrange (reshape/permute for
named axes and groups, the patterns TinyMyo uses).  Debian's torch (1.13)
lacks F.scaled_dot_product_attention, which TinyMyo calls: when it is
missing, torch's documented reference implementation (no attn_mask, not
causal, no GQA) is installed.

tinymyo.safetensors: a small TinyMyo (in_chans 4, img_size 80, patch 20,
embed_dim 24, 2 layers, 3 heads, qkv_bias, the YAML's 0.1 dropouts and
drop_path, task "pretraining", num_classes 0) in eval mode (no dropout, no
drop_path), its initialize_weights then perturbed (seeded) so that no
parameter sits at a special value (LayerNorm's 1 and 0, zero biases):
  model.<param>    float32 weights, TinyMyo's state_dict names
  x                input (B, C, T), also the loss target (x_original)
  mask             uint8 (B, C, T), 1 = masked, drawn as
                   tasks/pretrain_task_EMG.py's generate_mask draws it: per
                   sample, patches (1, 20), int(N · 0.5) of them
  reconstruction   TinyMyo(x, mask) unpatchified to (B, C, T) as the task's
                   unpatchify does
  embeddings       the latent tokens (B, N, D), TinyMyo's norm output
  grad.<param>     gradient of masked + 0.1 · unmasked smooth-L1
                   (PretrainCriterion("smooth_l1"), TinyMyo_pretrain.yaml's
                   unmasked_loss_coeff 0.1)
  metadata         config (the encoders.transformer options, a YAML flow
                   mapping), loss, masked_loss, unmasked_loss
Weights and inputs are float32; the model runs in float64 from them, so the
fixture holds the exact answer, rounded (TinyMyo's rotary casts q and k to
float32 and back: ~1e-7 relative, and it leaves attention unchanged).
The input is not MinMax-normalised (the task's MinMaxNormalization is an
input transform outside the model): N(0, 1.5²) reaches both branches of
smooth-L1.
"""
import importlib.util
import math
import os
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from fixtures import FIXTURE_DIR  # noqa: E402

CFG = dict(img_size=80, patch_size=20, in_chans=4, embed_dim=24, n_layer=2,
           n_head=3, mlp_ratio=4, qkv_bias=True, attn_drop=0.1, proj_drop=0.1,
           drop_path=0.1, task="pretraining", num_classes=0)
# the same model as encoders.transformer options (see its "TinyMyo settings")
CONFIG = ("{num_channels: 4, seq_length: 80, patch_size: 20, embed_dim: 24, "
          "depth: 2, num_heads: 3, mlp_ratio: 4, qkv_bias: true, "
          "drop_rate: 0.1, attn_drop_rate: 0.1, drop_path_rate: 0.1, "
          "drop_path_schedule: constant, rope: none, norm_eps: 1e-5, "
          "init: tinymyo}")
BATCH = 3
MASK_PATCH = (1, 20)
MASK_RATIO = 0.5
UNMASKED_LOSS_COEFF = 0.1


# ---- timm stand-in ---------------------------------------------------------

def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """timm.layers.weight_init.trunc_normal_: uniform in the CDF range,
    inverse CDF (erfinv), clamp; a and b are absolute bounds."""
    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0
    with torch.no_grad():
        lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
        tensor.uniform_(2 * lo - 1, 2 * hi - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
    return tensor


def drop_path(x, drop_prob=0.0, training=False, scale_by_keep=True):
    """timm.layers.drop.drop_path: one Bernoulli(keep) per sample."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    r = x.new_empty(shape).bernoulli_(keep)
    if keep > 0.0 and scale_by_keep:
        r.div_(keep)
    return x * r


class DropPath(nn.Module):
    def __init__(self, drop_prob=0.0, scale_by_keep=True):
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)


class Mlp(nn.Module):
    """timm.layers.mlp.Mlp: fc1 → act → drop1 → norm → fc2 → drop2."""

    def __init__(self, in_features, hidden_features=None, out_features=None,
                 act_layer=nn.GELU, norm_layer=None, bias=True, drop=0.0,
                 use_conv=False):
        super().__init__()
        if use_conv:
            raise NotImplementedError("Mlp stand-in: use_conv")
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        bias = tuple(bias) if isinstance(bias, (tuple, list)) else (bias, bias)
        drops = tuple(drop) if isinstance(drop, (tuple, list)) else (drop, drop)
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias[0])
        self.act = act_layer()
        self.drop1 = nn.Dropout(drops[0])
        self.norm = norm_layer(hidden_features) if norm_layer else nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias[1])
        self.drop2 = nn.Dropout(drops[1])

    def forward(self, x):
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(self.norm(x)))


# ---- einops stand-in -------------------------------------------------------

def _groups(side):
    """'B (C t) D' -> [['B'], ['C', 't'], ['D']]"""
    out, cur = [], None
    for tok in side.replace("(", " ( ").replace(")", " ) ").split():
        if tok == "(":
            cur = []
        elif tok == ")":
            out.append(cur)
            cur = None
        elif not tok.isidentifier():
            raise NotImplementedError("rearrange stand-in: axis %r" % tok)
        elif cur is None:
            out.append([tok])
        else:
            cur.append(tok)
    return out


def rearrange(t, pattern, **sizes):
    lhs, rhs = (_groups(s) for s in pattern.split("->"))
    if len(lhs) != t.ndim:
        raise ValueError("rearrange: %r against a %d-dim tensor" % (pattern, t.ndim))
    known = dict(sizes)
    for g, dim in zip(lhs, t.shape):
        unknown = [n for n in g if n not in known]
        prod = math.prod(known[n] for n in g if n in known)
        if len(unknown) > 1 or dim % prod:
            raise ValueError("rearrange: cannot split %d into %s" % (dim, g))
        if unknown:
            known[unknown[0]] = dim // prod
        elif prod != dim:
            raise ValueError("rearrange: %s is not %d" % (g, dim))
    names = [n for g in lhs for n in g]
    order = [n for g in rhs for n in g]
    if sorted(names) != sorted(order):
        raise ValueError("rearrange: %r changes the axes" % pattern)
    x = t.reshape([known[n] for n in names]).permute([names.index(n) for n in order])
    return x.reshape([math.prod(known[n] for n in g) for g in rhs])


def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
         scale=None, enable_gqa=False):
    """torch's documented reference of scaled_dot_product_attention."""
    if attn_mask is not None or is_causal or enable_gqa:
        raise NotImplementedError("sdpa stand-in: mask, causal or GQA")
    s = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    w = torch.softmax(query @ key.transpose(-2, -1) * s, dim=-1)
    w = torch.dropout(w, dropout_p, train=True)
    return w @ value


def install_stubs():
    timm = types.ModuleType("timm")
    layers = types.ModuleType("timm.layers")
    drop = types.ModuleType("timm.layers.drop")
    mlp = types.ModuleType("timm.layers.mlp")
    winit = types.ModuleType("timm.layers.weight_init")
    drop.DropPath, drop.drop_path = DropPath, drop_path
    mlp.Mlp = Mlp
    winit.trunc_normal_ = trunc_normal_
    layers.DropPath, layers.Mlp, layers.trunc_normal_ = DropPath, Mlp, trunc_normal_
    layers.drop, layers.mlp, layers.weight_init = drop, mlp, winit
    models = types.ModuleType("timm.models")
    models.layers = layers
    timm.layers, timm.models = layers, models
    einops = types.ModuleType("einops")
    einops.rearrange = rearrange
    sys.modules.update({"timm": timm, "timm.layers": layers,
                        "timm.layers.drop": drop, "timm.layers.mlp": mlp,
                        "timm.layers.weight_init": winit,
                        "timm.models": models, "timm.models.layers": layers,
                        "einops": einops})
    if not hasattr(F, "scaled_dot_product_attention"):
        F.scaled_dot_product_attention = sdpa


def load(ref, rel, name):
    """Imports ref/rel as module name (not through its package)."""
    path = os.path.join(ref, rel)
    if not os.path.isfile(path):
        raise SystemExit("%s: not found (give the BioFoundation tree as the "
                         "argument or in $BIOFOUNDATION_DIR)" % path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def generate_mask(B, C, T):
    """tasks/pretrain_task_EMG.py MaskTask.generate_mask (not importable
    here: Lightning, Hydra): per sample, int(N·ratio) random patches."""
    ph, pw = MASK_PATCH
    nh, nw = C // ph, T // pw
    n = nh * nw
    m = torch.zeros(B, n, dtype=torch.bool)
    for b in range(B):
        m[b, torch.randperm(n)[:int(n * MASK_RATIO)]] = True
    return m.reshape(B, nh, nw).repeat_interleave(ph, dim=1).repeat_interleave(pw, dim=2)


def main():
    ref = (sys.argv[1] if len(sys.argv) > 1 else
           os.environ.get("BIOFOUNDATION_DIR", "/work/shared/ref/biofoundation"))
    install_stubs()
    tm = load(ref, "models/TinyMyo.py", "biofoundation_TinyMyo")
    crit = load(ref, "criterion/pretrain_criterion.py", "biofoundation_pretrain_criterion")

    torch.manual_seed(0)
    model = tm.TinyMyo(**CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1 * (p.abs().mean() + 0.1))
    model = model.double().eval()
    B, C, T = BATCH, CFG["in_chans"], CFG["img_size"]
    x = (torch.randn(B, C, T) * 1.5).double()
    mask = generate_mask(B, C, T)
    latent = {}
    model.norm.register_forward_hook(lambda mod, inp, out: latent.update(z=out))

    recon, x_orig = model(x, mask=mask)                   # (B, N, P)
    recon = recon.reshape(B, C, -1)                       # the task's unpatchify
    masked, unmasked = crit.PretrainCriterion("smooth_l1")(recon, x_orig, mask)
    loss = masked + UNMASKED_LOSS_COEFF * unmasked
    loss.backward()

    # ORIGIN.md's claim, checked: TinyMyo's rotary leaves the output as is
    for blk in model.blocks:
        blk.attn.rope.forward = lambda t, **kw: t
    with torch.no_grad():
        plain, _ = model(x, mask=mask)
    diff = (plain.reshape(B, C, -1) - recon).abs().max().item()
    print("TinyMyo with its rotary vs without: max |diff| %.3g" % diff)
    if diff > 1e-5:
        raise SystemExit("TinyMyo's rotary changes the output: rope \"none\" would be wrong")

    out = {}
    for k, p in model.named_parameters():
        out["model." + k] = p.detach().float()
        out["grad." + k] = p.grad.float()
    out.update(x=x.float(), mask=mask.to(torch.uint8),
               reconstruction=recon.detach().float(),
               embeddings=latent["z"].detach().float())
    path = os.path.join(FIXTURE_DIR, "tinymyo.safetensors")
    safetensors_io.save(path, out, {"config": CONFIG, "loss": "%.9g" % loss.item(),
                                    "masked_loss": "%.9g" % masked.item(),
                                    "unmasked_loss": "%.9g" % unmasked.item()})
    print("%s: loss %.6f (masked %.6f, unmasked %.6f), %d parameters in %d tensors"
          % (path, loss.item(), masked.item(), unmasked.item(),
             sum(p.numel() for p in model.parameters()),
             len(list(model.parameters()))))


if __name__ == "__main__":
    main()

"""PyTorch reference models of mspt's encoders, for parity fixtures, the
loss-curve comparison and the side-by-side benchmark.

The math mirrors plugins/encoders/femba.c and plugins/encoders/transformer.c
operation for operation, and the state_dict keys are theirs (DESIGN.md), so
weights move both ways unchanged.  Pure PyTorch (Debian's python3-torch
1.13): the Mamba selective scan is mamba_ssm's selective_scan_ref, written
for channels-last tensors.

    model = FEMBA(num_channels=22, seq_length=1280, embed_dim=35, num_blocks=2)
    recon, embeddings = model(x_masked)              # x (B, C, T)
    loss = masked_smooth_l1(recon, target, mask)     # mask (B, C, T) bool
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def masked_smooth_l1(recon, target, mask, beta=1.0):
    """The pretrain task's loss: F.smooth_l1_loss(recon[mask], x[mask])."""
    return F.smooth_l1_loss(recon[mask], target[mask], beta=beta)


# ---- FEMBA ----------------------------------------------------------------

def selective_scan(u, dt, A, Bm, Cm, D, z):
    """u, dt, z (B, L, Din); A (Din, N); Bm, Cm (B, L, N); D (Din):
    h_t = exp(dt_t·A)·h_{t−1} + dt_t·Bm_t·u_t;  y_t = Cm_t·h_t + D·u_t;
    output y·silu(z).  selective_scan_ref: dA and dt·B·u are materialised
    (B, L, Din, N), the recurrence is a loop over time.  The per-step
    slices come from unbind, whose backward stacks the step gradients once
    (indexing dA[:, t] would allocate a zero (B, L, Din, N) gradient per
    step: quadratic in L)."""
    batch, L, Din = u.shape
    dA = torch.exp(torch.einsum("bld,dn->bldn", dt, A)).unbind(1)
    dBu = ((dt * u).unsqueeze(-1) * Bm.unsqueeze(2)).unbind(1)
    Cs = Cm.unbind(1)
    h = u.new_zeros(batch, Din, A.shape[1])
    ys = []
    for t in range(L):
        h = dA[t] * h + dBu[t]
        ys.append(torch.einsum("bdn,bn->bd", h, Cs[t]))
    y = torch.stack(ys, dim=1) + u * D
    return y * F.silu(z)


class Mamba(nn.Module):
    """Mamba(d, expand, d_state N, d_conv K, dt_rank R) on tokens (B, L, d)."""

    def __init__(self, d, expand=4, d_state=16, d_conv=4, dt_rank=None,
                 dt_min=0.001, dt_max=0.1, dt_init_floor=1e-4):
        super().__init__()
        Din = expand * d
        R = dt_rank or math.ceil(d / 16)
        self.Din, self.N, self.R, self.K = Din, d_state, R, d_conv
        self.in_proj = nn.Linear(d, 2 * Din, bias=False)
        self.conv1d = nn.Conv1d(Din, Din, d_conv, groups=Din, padding=d_conv - 1)
        self.x_proj = nn.Linear(Din, R + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(R, Din)
        self.A_log = nn.Parameter(torch.log(torch.arange(
            1, d_state + 1, dtype=torch.float32)).repeat(Din, 1))
        self.D = nn.Parameter(torch.ones(Din))
        self.out_proj = nn.Linear(Din, d, bias=False)
        # mamba_simple.py: dt_proj uniform ±R^-½, bias = softplus⁻¹(dt)
        nn.init.uniform_(self.dt_proj.weight, -R ** -0.5, R ** -0.5)
        dt = torch.exp(torch.rand(Din) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min)).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x):
        L = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)
        # causal depthwise conv: padding K−1, keep the first L outputs
        u = self.conv1d(u.transpose(1, 2))[..., :L].transpose(1, 2)
        u = F.silu(u)
        dt, Bm, Cm = self.x_proj(u).split([self.R, self.N, self.N], dim=-1)
        dt = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log)
        return self.out_proj(selective_scan(u, dt, A, Bm, Cm, self.D, z))


class BiMamba(nn.Module):
    def __init__(self, d, **kw):
        super().__init__()
        self.mamba_fwd = Mamba(d, **kw)
        self.mamba_rev = Mamba(d, **kw)

    def forward(self, x):
        return self.mamba_fwd(x) + self.mamba_rev(x.flip(1)).flip(1)


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim, patch, stride):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, patch, stride=stride)


class Decoder(nn.Module):
    def __init__(self, embed_dim, patch, stride, kernel_dec):
        super().__init__()
        pad = ((kernel_dec[0] - 1) // 2, (kernel_dec[1] - 1) // 2)
        self.dec_conv = nn.Conv2d(1, 1, kernel_dec, padding=pad, bias=False)
        self.conv_transpose = nn.ConvTranspose2d(embed_dim, 1, patch, stride=stride)


class FEMBA(nn.Module):
    """x (B,C,T) → patch conv (B,E,GH,GW) → tokens (B,GW,E·GH) + pos_embed
    → blocks of [x = LayerNorm(x + fwd(x) + flip(rev(flip(x))))]
    → dec_conv over (GW, d) → (B,E,GH,GW) → conv_transpose → (B,C,T)."""

    def __init__(self, num_channels=22, seq_length=1280, patch_size=(2, 16),
                 stride=None, embed_dim=79, num_blocks=4, exp=4, d_state=16,
                 d_conv=4, dt_rank=None, dt_min=0.001, dt_max=0.1,
                 dt_init_floor=1e-4, kernel_dec=(31, 31)):
        super().__init__()
        stride = tuple(stride or patch_size)
        self.C, self.T, self.E = num_channels, seq_length, embed_dim
        self.GH = (num_channels - patch_size[0]) // stride[0] + 1
        self.GW = (seq_length - patch_size[1]) // stride[1] + 1
        d = embed_dim * self.GH
        self.patch_embed = PatchEmbed(embed_dim, tuple(patch_size), stride)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.GW, d))
        kw = dict(expand=exp, d_state=d_state, d_conv=d_conv, dt_rank=dt_rank,
                  dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_init_floor)
        self.mamba_blocks = nn.ModuleList(BiMamba(d, **kw) for _ in range(num_blocks))
        self.norm_layers = nn.ModuleList(nn.LayerNorm(d, eps=1e-5)
                                         for _ in range(num_blocks))
        self.decoder = Decoder(embed_dim, tuple(patch_size), stride, tuple(kernel_dec))

    def forward(self, x, mask=None):
        """x (B,C,T), masked entries already zero (FEMBA ignores mask)."""
        B = x.shape[0]
        p = self.patch_embed.proj(x.unsqueeze(1))          # (B,E,GH,GW)
        h = p.reshape(B, -1, self.GW).transpose(1, 2) + self.pos_embed
        for blk, norm in zip(self.mamba_blocks, self.norm_layers):
            h = norm(h + blk(h))
        emb = h
        plane = self.decoder.dec_conv(h.unsqueeze(1)).squeeze(1)  # (B,GW,d)
        t = plane.transpose(1, 2).reshape(B, self.E, self.GH, self.GW)
        out = self.decoder.conv_transpose(t)                # (B,1,C,T)
        return out.reshape(B, self.C, self.T), emb


# ---- rotary Transformer ----------------------------------------------------

def rotary(x, base):
    """x (B,H,N,hd): pairs (2i, 2i+1) rotated by angle n·base^(−2i/hd)."""
    N, hd = x.shape[-2], x.shape[-1]
    inv = base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(N, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias, rope_base):
        super().__init__()
        self.H, self.base = heads, rope_base
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        hd = D // self.H
        q, k, v = self.qkv(x).reshape(B, N, 3, self.H, hd).permute(2, 0, 3, 1, 4)
        q, k = rotary(q, self.base), rotary(k, self.base)
        a = torch.softmax(q @ k.transpose(-2, -1) * hd ** -0.5, dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # erf form
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, qkv_bias, rope_base, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias, rope_base)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransformerPatchEmbedding(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.patch_embed = PatchEmbed(dim, (1, patch), (1, patch))


class Head(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.decoder_pred = nn.Linear(dim, patch)


class Transformer(nn.Module):
    """x (B,C,T) → per-channel patches of P samples → tokens (B, C·W, D),
    channel-major; a token whose patch holds any masked sample becomes
    mask_token → depth pre-norm blocks with rotary attention → norm
    (embeddings) → Linear D→P per token → (B,C,T)."""

    def __init__(self, num_channels=22, seq_length=1280, patch_size=20,
                 embed_dim=192, depth=8, num_heads=3, mlp_ratio=4.0,
                 qkv_bias=True, rope_base=10000.0, norm_eps=1e-6):
        super().__init__()
        self.C, self.T, self.P, self.D = num_channels, seq_length, patch_size, embed_dim
        self.W = seq_length // patch_size
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.patch_embedding = TransformerPatchEmbedding(embed_dim, patch_size)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, rope_base, norm_eps)
            for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.model_head = Head(embed_dim, patch_size)
        self._init_weights()

    def _init_weights(self):
        """MAE / timm ViT: mask token N(0, .02), patch conv xavier-uniform as
        a Linear, Linear weights trunc_normal(.02) with zero bias."""
        nn.init.normal_(self.mask_token, std=0.02)
        w = self.patch_embedding.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embedding.patch_embed.proj.bias)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x, mask=None):
        B = x.shape[0]
        p = self.patch_embedding.patch_embed.proj(x.unsqueeze(1))  # (B,D,C,W)
        h = p.flatten(2).transpose(1, 2)                           # (B,N,D)
        if mask is not None:
            rows = mask.reshape(B, self.C * self.W, self.P).any(-1)
            h = torch.where(rows[..., None], self.mask_token.to(h.dtype), h)
        for blk in self.blocks:
            h = blk(h)
        h = self.norm(h)
        out = self.model_head.decoder_pred(h)                      # (B,N,P)
        return out.reshape(B, self.C, self.T), h


def build(kind, **cfg):
    return {"femba": FEMBA, "transformer": Transformer}[kind](**cfg)

"""Writes the PyTorch fixtures of the SAM image encoder tests (test/sam.test.ts).

Run with Debian's python3-torch (1.13):

    /usr/bin/python3 scripts/make-sam-fixtures.py

The encoder below is rebuilt from the published design of Segment Anything's
ViT image encoder. It has a 16x16 patch embedding and an absolute position
embedding, then transformer blocks with windowed or global multi-head
attention and a decomposed relative position bias, then a neck of two
convolutions with channel LayerNorms. It is a reference for the TypeScript
port, written for clarity, and it keeps the official parameter names.

Outputs in test/fixtures/sam/:
- tiny.pth: torch.save of a state dict named like the official checkpoint
  (image_encoder.* for the tiny encoder, prompt_encoder.mask_downscaling.*
  for a small mask-prompt encoder, plus two unrelated keys that a loader
  must drop).
- expected.json: outputs of those modules in float64 for inputs made by a
  formula (see pattern()), and the weights of a 3D mask-prompt encoder.

The encoder input is not stored: the test computes the same formula. One
case runs at the config's own size (256) and one at 160, which makes the
position embedding and the global block's relative position tables
interpolate.
"""

import json
import math
import pathlib

import torch
import torch.nn.functional as F
from torch import nn

OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "sam"

TINY = dict(
    img_size=256,
    patch_size=16,
    embed_dim=32,
    depth=2,
    num_heads=2,
    mlp_ratio=4,
    out_chans=32,
    window_size=7,
    global_attn_indexes=[1],
)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of [N, C, ...] (SAM uses eps 1e-6)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        normalised = (x - mean) / torch.sqrt(variance + self.eps)
        affine_shape = [1, -1] + [1] * (x.dim() - 2)
        return normalised * self.weight.view(affine_shape) + self.bias.view(affine_shape)


class PatchEmbed(nn.Module):
    def __init__(self, patch, channels):
        super().__init__()
        self.proj = nn.Conv2d(3, channels, patch, stride=patch)

    def forward(self, x):
        # [B, C, h, w] -> channels last [B, h, w, C]
        return self.proj(x).permute(0, 2, 3, 1)


class MLPBlock(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.lin1 = nn.Linear(channels, hidden)
        self.lin2 = nn.Linear(hidden, channels)

    def forward(self, x):
        return self.lin2(F.gelu(self.lin1(x)))


def relative_table(q_size, k_size, table):
    """Bias vectors for every (query, key) pair along one axis: [q, k, dim].

    The table contains one vector per relative offset, 2 * max(q, k) - 1 rows;
    a table of another length is first resampled linearly to that length.
    When q and k differ, the coarser axis is stretched to the finer one.
    """
    rows = 2 * max(q_size, k_size) - 1
    if table.shape[0] != rows:
        table = F.interpolate(table.t().unsqueeze(0), size=rows, mode="linear")
        table = table.squeeze(0).t()
    q_stretch = max(k_size / q_size, 1.0)
    k_stretch = max(q_size / k_size, 1.0)
    q_pos = torch.arange(q_size).unsqueeze(1) * q_stretch
    k_pos = torch.arange(k_size).unsqueeze(0) * k_stretch
    offsets = q_pos - k_pos + (k_size - 1) * k_stretch
    return table[offsets.long()]


class Attention(nn.Module):
    def __init__(self, channels, heads, grid):
        super().__init__()
        self.heads = heads
        head_dim = channels // heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(channels, 3 * channels, bias=True)
        self.proj = nn.Linear(channels, channels)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))

    def forward(self, x):
        b, h, w, c = x.shape
        n = h * w
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).reshape(3, b * self.heads, n, -1).unbind(0)
        scores = (q * self.scale) @ k.transpose(-2, -1)

        # Decomposed relative position bias: the query (unscaled) dotted with
        # a vertical-offset vector plus one with a horizontal-offset vector.
        table_h = relative_table(h, h, self.rel_pos_h)
        table_w = relative_table(w, w, self.rel_pos_w)
        grid_q = q.reshape(b * self.heads, h, w, -1)
        bias_h = torch.einsum("bhwc,hkc->bhwk", grid_q, table_h)
        bias_w = torch.einsum("bhwc,wkc->bhwk", grid_q, table_w)
        scores = scores.view(-1, h, w, h, w) + bias_h[..., :, None] + bias_w[..., None, :]
        scores = scores.view(-1, n, n)

        out = scores.softmax(dim=-1) @ v
        out = out.view(b, self.heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, c)
        return self.proj(out)


def partition(x, window):
    """Pads [B, H, W, C] to multiples of window and splits it into windows."""
    b, h, w, c = x.shape
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c), (hp, wp)


def unpartition(windows, window, padded, size):
    hp, wp = padded
    h, w = size
    b = windows.shape[0] // (hp // window * wp // window)
    x = windows.view(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w, :]


class Block(nn.Module):
    def __init__(self, channels, heads, mlp_ratio, window, grid):
        super().__init__()
        self.window = window
        # SAM builds its blocks with LayerNorm(eps=1e-6).
        self.norm1 = nn.LayerNorm(channels, eps=1e-6)
        self.attn = Attention(channels, heads, window if window > 0 else grid)
        self.norm2 = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = MLPBlock(channels, int(channels * mlp_ratio))

    def forward(self, x):
        shortcut = x
        x = self.norm1(x)
        if self.window > 0:
            size = x.shape[1:3]
            x, padded = partition(x, self.window)
            x = unpartition(self.attn(x), self.window, padded, size)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class ImageEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        dim = config["embed_dim"]
        grid = config["img_size"] // config["patch_size"]
        self.patch_embed = PatchEmbed(config["patch_size"], dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, dim))
        self.blocks = nn.ModuleList(
            Block(
                dim,
                config["num_heads"],
                config["mlp_ratio"],
                0 if i in config["global_attn_indexes"] else config["window_size"],
                grid,
            )
            for i in range(config["depth"])
        )
        out = config["out_chans"]
        self.neck = nn.Sequential(
            nn.Conv2d(dim, out, 1, bias=False),
            LayerNorm2d(out),
            nn.Conv2d(out, out, 3, padding=1, bias=False),
            LayerNorm2d(out),
        )

    def forward(self, x):
        x = self.patch_embed(x)
        pos = self.pos_embed
        if pos.shape[1:3] != x.shape[1:3]:
            # Not in SAM, which always runs at its pretraining size: resample
            # the embedding bilinearly (align_corners False, no antialias).
            pos = F.interpolate(
                pos.permute(0, 3, 1, 2), size=x.shape[1:3], mode="bilinear", align_corners=False
            ).permute(0, 2, 3, 1)
        x = x + pos
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))


def mask_downscaling(conv, norm, in_channels, hidden, embed):
    """SAM's mask-prompt path: two 2x2 stride-2 convs with LayerNorm and GELU."""
    quarter = hidden // 4
    return nn.Sequential(
        conv(in_channels, quarter, 2, stride=2),
        norm(quarter),
        nn.GELU(),
        conv(quarter, hidden, 2, stride=2),
        norm(hidden),
        nn.GELU(),
        conv(hidden, embed, 1),
    )


def randomise(module, generator):
    """Gives every parameter non-trivial values, so each one affects the output."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "rel_pos" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
            elif name.endswith("pos_embed"):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
            elif p.dim() == 1 and ("norm" in name or name.startswith("neck") or "downscaling" in name):
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=generator))


def pattern(shape):
    """Return the test input: a smooth pattern plus a ripple, in float32.

    value[n, c, i, j] = sin(0.37 i + 1.3 c + 0.5 n) cos(0.23 j - 0.7 c)
                        + 0.1 ((7 i + 13 j + 5 c + 3 n) mod 11 - 5) / 5
    """
    n, c, h, w = shape
    values = torch.empty(shape, dtype=torch.float64)
    for a in range(n):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    smooth = math.sin(0.37 * i + 1.3 * ch + 0.5 * a) * math.cos(0.23 * j - 0.7 * ch)
                    ripple = 0.1 * (((7 * i + 13 * j + 5 * ch + 3 * a) % 11) - 5) / 5
                    values[a, ch, i, j] = smooth + ripple
    return values.float().double()


def values(t):
    # Nine significant digits round-trip float32 and keep float64 outputs
    # far inside the tests' tolerances.
    return [float(f"{float(v):.9g}") for v in t.detach().reshape(-1)]


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(20240611)
    torch.manual_seed(20240611)

    encoder = ImageEncoder(TINY)
    randomise(encoder, generator)
    prompt2d = mask_downscaling(nn.Conv2d, LayerNorm2d, 1, 8, 12)
    randomise(nn.ModuleDict({"downscaling": prompt2d}), generator)
    prompt3d = mask_downscaling(nn.Conv3d, LayerNorm2d, 2, 8, 12)
    randomise(nn.ModuleDict({"downscaling": prompt3d}), generator)

    state = {}
    for name, p in encoder.state_dict().items():
        state[f"image_encoder.{name}"] = p.float().clone()
    for name, p in prompt2d.state_dict().items():
        state[f"prompt_encoder.mask_downscaling.{name}"] = p.float().clone()
    # Keys of the other SAM parts, which the image encoder's table drops.
    state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"] = torch.randn(2, 4)
    state["mask_decoder.iou_token.weight"] = torch.randn(1, 4)
    torch.save(state, OUT_DIR / "tiny.pth")

    encoder = encoder.double()
    cases = []
    with torch.no_grad():
        for size in (256, 160):
            x = pattern([1, 3, size, size])
            out = encoder(x)
            cases.append(dict(size=size, shape=list(out.shape), out=values(out)))

        mask2d = pattern([2, 1, 12, 16])
        out2d = prompt2d.double()(mask2d)
        # Two channels of 8x4x12: [1, 2, 8, 4, 12].
        mask3d = pattern([2, 8, 4, 12]).unsqueeze(0)
        out3d = prompt3d.double()(mask3d)

    weights3d = {
        name: dict(shape=list(p.shape), data=values(p)) for name, p in prompt3d.state_dict().items()
    }
    expected = dict(
        config=TINY,
        encoder=cases,
        prompt2d=dict(
            in_shape=list(mask2d.shape), shape=list(out2d.shape), out=values(out2d)
        ),
        prompt3d=dict(
            in_shape=list(mask3d.shape),
            input=values(mask3d),
            shape=list(out3d.shape),
            out=values(out3d),
            weights=weights3d,
        ),
    )
    text = json.dumps(expected, separators=(",", ":"))
    (OUT_DIR / "expected.json").write_text(text + "\n")
    total = sum(p.numel() for p in encoder.parameters())
    print(f"tiny encoder: {total} parameters; wrote {OUT_DIR}")


if __name__ == "__main__":
    main()

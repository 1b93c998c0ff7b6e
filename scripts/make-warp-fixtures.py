"""Writes test/fixtures/warp-torch.json: values and gradients of the warp
computed by PyTorch the way VoxelMorph's SpatialTransformer computes them,
for the TypeScript tests.

Run with Debian's python3-torch: /usr/bin/python3 scripts/make-warp-fixtures.py

The flow [N, 3, D, H, W] holds displacements in voxels along (D, H, W).
As in VoxelMorph, the sample points p + flow(p) are normalised per axis to
[-1, 1] with 2 * (x / (size - 1) - 0.5), moved to the last dimension and
reversed to grid_sample's (x, y, z) order, and sampled with
align_corners=True and padding_mode='zeros'. Inputs are drawn here and
stored in the file, so the tests do not depend on PyTorch's random stream.
Gradients are of sum(out * out_weights), in float64.
"""

import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

CASES = [
    dict(name="two channels odd sizes", image=[1, 2, 5, 4, 6],
         mode="bilinear", reach=2),
    dict(name="batch of two", image=[2, 1, 4, 5, 3], mode="bilinear",
         reach=2),
    dict(name="three channels large flow", image=[1, 3, 3, 5, 4],
         mode="bilinear", reach=3),
    dict(name="nearest", image=[1, 2, 4, 5, 6], mode="nearest", reach=2),
]


def spatial_transformer(image, flow, mode):
    size = image.shape[2:]
    axes = [torch.arange(s, dtype=torch.float64) for s in size]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij")).unsqueeze(0)
    points = grid + flow
    normalised = torch.stack(
        [2 * (points[:, i] / (size[i] - 1) - 0.5) for i in range(3)], dim=1)
    normalised = normalised.permute(0, 2, 3, 4, 1)[..., [2, 1, 0]]
    return F.grid_sample(image, normalised, mode=mode,
                         padding_mode="zeros", align_corners=True)


def values(t):
    # Nine significant digits round-trip float32 inputs exactly and keep
    # outputs far inside the tests' 1e-4 relative tolerance.
    return [float(f"{float(v):.9g}") for v in t.detach().reshape(-1)]


def flow_like(shape, reach):
    # Fractions of 0.2 to 0.8 keep every sample point off the integer
    # coordinates, where the trilinear sample has kinks (and where the
    # normalised round trip could tip nearest's rounding either way).
    # Whole voxels in [-reach, reach] move some points outside the volume.
    whole = torch.randint(-reach, reach + 1, shape).double()
    fraction = 0.2 + 0.6 * torch.rand(shape)
    sign = torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)
    flow = whole + sign * fraction
    return flow.float().double()


def run(case):
    image = torch.randn(case["image"]).float().double().requires_grad_()
    n, _, d, h, w = case["image"]
    flow = flow_like([n, 3, d, h, w], case["reach"]).requires_grad_()
    out = spatial_transformer(image, flow, case["mode"])
    result = dict(name=case["name"], mode=case["mode"],
                  image=dict(shape=list(image.shape), data=values(image)),
                  flow=dict(shape=list(flow.shape), data=values(flow)),
                  out=dict(shape=list(out.shape), data=values(out)))
    if case["mode"] == "bilinear":
        weights = torch.randn(out.shape).float().double()
        (out * weights).sum().backward()
        result.update(out_weights=values(weights), grad_image=values(image.grad),
                      grad_flow=values(flow.grad))
    return result


def main():
    cases = [run(c) for c in CASES]
    root = pathlib.Path(__file__).resolve().parent.parent
    target = root / "test" / "fixtures" / "warp-torch.json"
    payload = dict(torch=torch.__version__, cases=cases)
    target.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

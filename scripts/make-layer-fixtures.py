"""Writes test/fixtures/layers-torch.json: outputs and gradients of the
normalisation, pooling and upsampling layers as PyTorch computes them, for
the TypeScript tests.

Run with Debian's python3-torch: /usr/bin/python3 scripts/make-layer-fixtures.py
Inputs are drawn here and stored in the file, so the tests do not depend on
PyTorch's random stream. Gradients are those of sum(out * upstream), where
upstream[i] = ((7 * i) % 11 - 5) / 4 over the flat output (exact in float32,
so the tests rebuild it instead of storing it). Layout [N, C, D, H, W]
throughout, except layer_norm, which normalises the trailing dimensions.
"""

import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def values(t):
    # Nine significant digits round-trip float32 inputs exactly and keep
    # outputs far inside the tests' 1e-4 relative tolerance.
    return [float(f"{float(v):.9g}") for v in t.detach().reshape(-1)]


def stored(t):
    return {"shape": list(t.shape), "data": values(t)}


def float32_randn(shape):
    # Values exactly representable in float32, so both sides see the same
    # inputs.
    return torch.randn(shape).float().double()


def distinct_values(shape):
    # A shuffled ramp of float32 values 1/64 apart: no two elements tie, so
    # every max-pool window has one argmax even after a finite-difference
    # step.
    count = 1
    for d in shape:
        count *= d
    ramp = (torch.arange(count) - count / 2) / 64
    return ramp[torch.randperm(count)].reshape(shape).float().double()


def upstream(shape):
    count = 1
    for d in shape:
        count *= d
    i = torch.arange(count)
    return (((7 * i) % 11 - 5) / 4).reshape(shape)


def case(name, run, inputs, **options):
    """Runs `run(**inputs)`, which returns one output tensor or a tuple of
    them, and the gradients of sum(out * upstream) for every input that is
    not None."""
    leaves = {
        k: (v.clone().requires_grad_(True) if v is not None else None)
        for k, v in inputs.items()
    }
    outs = run(**leaves)
    if not isinstance(outs, tuple):
        outs = (outs,)
    loss = sum((out * upstream(out.shape)).sum() for out in outs)
    loss.backward()
    entry = {"name": name, "options": options}
    entry["inputs"] = {k: stored(v) for k, v in leaves.items() if v is not None}
    entry["outputs"] = [stored(out) for out in outs]
    entry["grads"] = {
        k: values(v.grad) for k, v in leaves.items() if v is not None
    }
    return entry


def layer_norm_2d(x, weight, bias, eps):
    """SAM's LayerNorm2d written out for [N, C, ...]: mean and biased
    variance over the channel axis at every position."""
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    normalized = (x - u) / torch.sqrt(s + eps)
    view = [1, -1] + [1] * (x.dim() - 2)
    return weight.reshape(view) * normalized + bias.reshape(view)


def norm_cases():
    cases = []
    shape = [2, 3, 2, 3, 4]
    cases.append(case(
        "instance_norm affine", lambda x, weight, bias: F.instance_norm(
            x, weight=weight, bias=bias, eps=1e-5),
        {"x": float32_randn(shape), "weight": float32_randn([3]),
         "bias": float32_randn([3])}, eps=1e-5))
    cases.append(case(
        "instance_norm plain", lambda x: F.instance_norm(x, eps=1e-5),
        {"x": float32_randn([1, 2, 3, 2, 5]) * 3 + 2}, eps=1e-5))
    cases.append(case(
        "group_norm 3 groups", lambda x, weight, bias: F.group_norm(
            x, 3, weight, bias, eps=1e-5),
        {"x": float32_randn([2, 6, 2, 2, 3]), "weight": float32_randn([6]),
         "bias": float32_randn([6])}, groups=3, eps=1e-5))
    cases.append(case(
        "group_norm 1 group", lambda x: F.group_norm(x, 1, eps=1e-5),
        {"x": float32_randn([1, 4, 2, 3, 3])}, groups=1, eps=1e-5))
    cases.append(case(
        "layer_norm last dim", lambda x, weight, bias: F.layer_norm(
            x, [6], weight, bias, eps=1e-5),
        {"x": float32_randn([2, 3, 4, 6]), "weight": float32_randn([6]),
         "bias": float32_randn([6])}, normalized_shape=[6], eps=1e-5))
    cases.append(case(
        "layer_norm last two dims", lambda x, weight, bias: F.layer_norm(
            x, [4, 5], weight, bias, eps=1e-5),
        {"x": float32_randn([3, 4, 5]), "weight": float32_randn([4, 5]),
         "bias": float32_randn([4, 5])}, normalized_shape=[4, 5], eps=1e-5))
    cases.append(case(
        "layer_norm_2d sam", lambda x, weight, bias: layer_norm_2d(
            x, weight, bias, 1e-6),
        {"x": float32_randn([2, 5, 3, 4]), "weight": float32_randn([5]),
         "bias": float32_randn([5])}, eps=1e-6))
    cases.append(case(
        "layer_norm_2d volume", lambda x, weight, bias: layer_norm_2d(
            x, weight, bias, 1e-6),
        {"x": float32_randn([1, 4, 2, 3, 4]), "weight": float32_randn([4]),
         "bias": float32_randn([4])}, eps=1e-6))
    cases.append(case(
        "batch_stats", lambda x: tuple(reversed(torch.var_mean(
            x, dim=[0, 2, 3, 4], unbiased=False))),
        {"x": float32_randn([3, 4, 2, 2, 3])}))
    return cases


def batch_norm_cases():
    cases = []
    for training in (True, False):
        x = float32_randn([3, 4, 2, 2, 3]) * 2 + 1
        running_mean = float32_randn([4])
        running_var = torch.rand([4]).float().double() + 0.5
        start_mean = running_mean.clone()
        start_var = running_var.clone()
        entry = case(
            f"batch_norm {'training' if training else 'evaluation'}",
            lambda x, weight, bias: F.batch_norm(
                x, running_mean, running_var, weight, bias,
                training=training, momentum=0.1, eps=1e-5),
            {"x": x, "weight": float32_randn([4]), "bias": float32_randn([4])},
            training=training, momentum=0.1, eps=1e-5)
        entry["running_before"] = {
            "mean": values(start_mean), "var": values(start_var)}
        entry["running_after"] = {
            "mean": values(running_mean), "var": values(running_var)}
        cases.append(entry)
    return cases


POOL_GEOMETRIES = [
    ("k3 s2 p1", 3, 2, 1),
    ("k2 default stride", 2, None, 0),
    ("k 2x3x2 s 1x2x2 p 1x1x0", [2, 3, 2], [1, 2, 2], [1, 1, 0]),
]


def pool_cases():
    cases = []
    for name, kernel, stride, padding in POOL_GEOMETRIES:
        options = {"kernel_size": kernel, "stride": stride, "padding": padding}
        cases.append(case(
            f"max_pool3d {name}",
            lambda x: F.max_pool3d(x, kernel, stride, padding),
            {"x": distinct_values([1, 2, 4, 5, 6])}, **options))
        # Without padding count_include_pad changes nothing: test it once.
        for include in (True, False) if padding else (True,):
            cases.append(case(
                f"avg_pool3d {name} count_include_pad {include}",
                lambda x: F.avg_pool3d(
                    x, kernel, stride, padding, count_include_pad=include),
                {"x": distinct_values([1, 2, 4, 5, 6])},
                count_include_pad=include, **options))
    return cases


UPSAMPLE_CASES = [
    # name, input shape, mode, align_corners, scale, size
    ("trilinear scale 2", [1, 2, 2, 3, 4], "trilinear", False, 2, None),
    ("trilinear scale 2 align_corners", [1, 1, 2, 3, 4], "trilinear", True, 2,
     None),
    ("trilinear size 7x9x11", [1, 1, 3, 4, 5], "trilinear", False, None,
     [7, 9, 11]),
    ("trilinear size 7x9x11 align_corners", [1, 1, 3, 4, 5], "trilinear",
     True, None, [7, 9, 11]),
    ("trilinear scale 2x1x3", [1, 1, 2, 3, 2], "trilinear", False, [2, 1, 3],
     None),
    ("trilinear scale 1.5", [1, 1, 2, 3, 5], "trilinear", False, 1.5, None),
    ("trilinear size down 2x3x2", [1, 1, 5, 6, 3], "trilinear", False, None,
     [2, 3, 2]),
    ("nearest scale 2", [1, 2, 2, 3, 4], "nearest", None, 2, None),
    ("nearest size 7x9x11", [1, 1, 3, 4, 5], "nearest", None, None,
     [7, 9, 11]),
    ("nearest scale 1.5", [1, 1, 2, 3, 5], "nearest", None, 1.5, None),
    ("nearest size down 2x3x2", [1, 1, 5, 6, 3], "nearest", None, None,
     [2, 3, 2]),
]


def upsample_cases():
    cases = []
    for name, shape, mode, align, scale, size in UPSAMPLE_CASES:
        cases.append(case(
            name,
            lambda x: F.interpolate(
                x, size=size, scale_factor=scale, mode=mode,
                align_corners=align),
            {"x": float32_randn(shape)},
            mode="linear" if mode == "trilinear" else "nearest",
            align_corners=bool(align), scale=scale, size=size))
    return cases


def main():
    fixtures = {
        "torch_version": torch.__version__,
        "norm": norm_cases(),
        "batch_norm": batch_norm_cases(),
        "pool": pool_cases(),
        "upsample": upsample_cases(),
    }
    target = pathlib.Path(__file__).resolve().parent.parent / "test" / \
        "fixtures" / "layers-torch.json"
    text = json.dumps(fixtures, separators=(",", ":"))
    target.write_text(text + "\n")
    print(f"wrote {target} ({len(text)} bytes)")


if __name__ == "__main__":
    main()

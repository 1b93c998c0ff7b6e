"""Writes test/fixtures/conv3d-torch.json: conv3d and conv_transpose3d
values and gradients computed by PyTorch, for the TypeScript tests.

Run with Debian's python3-torch: /usr/bin/python3 scripts/make-conv-fixtures.py
Inputs are drawn here and stored in the file, so the tests do not depend on
PyTorch's random stream. Gradients are of sum(out * weights_out).
"""

import json
import pathlib

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

CONV_CASES = [
    dict(name="k3 padding 1", x=[1, 3, 5, 4, 7], w=[4, 3, 3, 3, 3],
         stride=1, padding=1, dilation=1),
    dict(name="k3 stride 2 odd sizes", x=[2, 2, 5, 4, 7], w=[5, 2, 3, 3, 3],
         stride=2, padding=1, dilation=1),
    dict(name="k2 stride 2", x=[1, 3, 6, 5, 7], w=[4, 3, 2, 2, 2],
         stride=2, padding=0, dilation=1),
    dict(name="per-axis", x=[1, 2, 7, 6, 7], w=[3, 2, 3, 2, 3],
         stride=[1, 2, 3], padding=[2, 0, 1], dilation=[2, 1, 1]),
]

TRANSPOSE_CASES = [
    dict(name="k2 stride 2", x=[1, 3, 3, 4, 5], w=[3, 4, 2, 2, 2],
         stride=2, padding=0, output_padding=0),
    dict(name="k3 stride 2 padding 1 output padding 1", x=[2, 2, 3, 4, 5],
         w=[2, 3, 3, 3, 3], stride=2, padding=1, output_padding=1),
]


def values(t):
    # Nine significant digits round-trip float32 inputs exactly and keep
    # outputs far inside the tests' 1e-4 relative tolerance.
    return [float(f"{float(v):.9g}") for v in t.detach().reshape(-1)]


def run(case, fn, bias_channels, extra):
    x = torch.randn(case["x"]).float().double().requires_grad_()
    w = torch.randn(case["w"]).float().double().requires_grad_()
    b = torch.randn(bias_channels).float().double().requires_grad_()
    out = fn(x, w, b, **extra)
    weights = torch.randn(out.shape).float().double()
    (out * weights).sum().backward()
    result = dict(case)
    result.update(
        x=dict(shape=list(x.shape), data=values(x)),
        weight=dict(shape=list(w.shape), data=values(w)),
        bias=dict(shape=list(b.shape), data=values(b)),
        out_weights=values(weights),
        out=dict(shape=list(out.shape), data=values(out)),
        grad_x=values(x.grad),
        grad_weight=values(w.grad),
        grad_bias=values(b.grad),
    )
    return result


def main():
    conv = [
        run(c, torch.nn.functional.conv3d, c["w"][0],
            dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"]))
        for c in CONV_CASES
    ]
    transpose = [
        run(c, torch.nn.functional.conv_transpose3d, c["w"][1],
            dict(stride=c["stride"], padding=c["padding"],
                 output_padding=c["output_padding"]))
        for c in TRANSPOSE_CASES
    ]
    target = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "conv3d-torch.json"
    payload = dict(torch=torch.__version__, conv3d=conv, conv_transpose3d=transpose)
    target.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

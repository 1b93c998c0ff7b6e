"""Writes test/fixtures/losses-torch.json: values and gradients of the
local NCC loss, the l2 gradient (smoothness) loss and the soft Dice loss,
computed by PyTorch the way VoxelMorph and MONAI compute them, for the
TypeScript tests.

Run with Debian's python3-torch: /usr/bin/python3 scripts/make-loss-fixtures.py
Inputs are drawn here and stored in the file, so the tests do not depend on
PyTorch's random stream. The losses are scalars, so the gradients are those
of the loss itself. Layout [N, C, D, H, W] throughout.
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


def float32_randn(shape):
    # Values exactly representable in float32, so both sides see the same
    # inputs.
    return torch.randn(shape).float().double()


def ncc_voxelmorph(a, b, window):
    """VoxelMorph's NCC loss: box sums as a conv3d with a ones filter,
    padding window // 2, stride 1; one channel per call."""
    ones = torch.ones([1, 1, *window])
    padding = [w // 2 for w in window]
    count = window[0] * window[1] * window[2]
    sum_a = F.conv3d(a, ones, padding=padding)
    sum_b = F.conv3d(b, ones, padding=padding)
    sum_aa = F.conv3d(a * a, ones, padding=padding)
    sum_bb = F.conv3d(b * b, ones, padding=padding)
    sum_ab = F.conv3d(a * b, ones, padding=padding)
    mean_a = sum_a / count
    mean_b = sum_b / count
    cross = sum_ab - mean_b * sum_a - mean_a * sum_b + mean_a * mean_b * count
    var_a = sum_aa - 2 * mean_a * sum_a + mean_a * mean_a * count
    var_b = sum_bb - 2 * mean_b * sum_b + mean_b * mean_b * count
    cc = cross * cross / (var_a * var_b + 1e-5)
    return -torch.mean(cc)


def smoothness_voxelmorph(flow):
    """VoxelMorph's l2 gradient loss: the mean squared forward difference
    along each spatial axis, the three means averaged."""
    dz = flow[:, :, 1:, :, :] - flow[:, :, :-1, :, :]
    dy = flow[:, :, :, 1:, :] - flow[:, :, :, :-1, :]
    dx = flow[:, :, :, :, 1:] - flow[:, :, :, :, :-1]
    return ((dz * dz).mean() + (dy * dy).mean() + (dx * dx).mean()) / 3


def dice_monai(probs, target, exclude_background, epsilon=1e-5):
    """MONAI's DiceLoss defaults (batch=False, smooth_nr = smooth_dr =
    1e-5): Dice per sample and class over the spatial axes, 1 - the mean."""
    if exclude_background:
        probs = probs[:, 1:]
        target = target[:, 1:]
    axes = [2, 3, 4]
    intersection = (probs * target).sum(axes)
    denominator = probs.sum(axes) + target.sum(axes)
    dice = (2 * intersection + epsilon) / (denominator + epsilon)
    return 1 - dice.mean()


def ncc_case(name, shape, window, offset=0.0):
    a = (float32_randn(shape) + offset).float().double().requires_grad_()
    b = (0.5 * a.detach() + float32_randn(shape)).float().double().requires_grad_()
    loss = ncc_voxelmorph(a, b, window)
    loss.backward()
    return dict(
        name=name,
        window=window,
        a=dict(shape=shape, data=values(a)),
        b=dict(shape=shape, data=values(b)),
        loss=float(f"{float(loss):.9g}"),
        grad_a=values(a.grad),
        grad_b=values(b.grad),
    )


def smoothness_case(name, shape):
    flow = float32_randn(shape).requires_grad_()
    loss = smoothness_voxelmorph(flow)
    loss.backward()
    return dict(
        name=name,
        flow=dict(shape=shape, data=values(flow)),
        loss=float(f"{float(loss):.9g}"),
        grad_flow=values(flow.grad),
    )


def dice_case(name, shape, exclude_background):
    probs = torch.softmax(float32_randn(shape), dim=1).float().double().requires_grad_()
    labels = torch.randint(0, shape[1], [shape[0], *shape[2:]])
    target = F.one_hot(labels, shape[1]).permute(0, 4, 1, 2, 3).double()
    # An empty class in the first sample: class 1 absent from the target.
    target[0, 0] += target[0, 1]
    target[0, 1] = 0
    target.requires_grad_()
    loss = dice_monai(probs, target, exclude_background)
    loss.backward()
    return dict(
        name=name,
        exclude_background=exclude_background,
        probs=dict(shape=shape, data=values(probs)),
        target=dict(shape=shape, data=values(target)),
        loss=float(f"{float(loss):.9g}"),
        grad_probs=values(probs.grad),
        grad_target=values(target.grad),
    )


def main():
    fixtures = dict(
        ncc=[
            ncc_case("window 3", [1, 1, 7, 5, 9], [3, 3, 3]),
            ncc_case("window 5 offset intensities", [1, 1, 6, 7, 5], [5, 5, 5], offset=2.0),
            ncc_case("window 3 5 3", [1, 1, 5, 6, 7], [3, 5, 3]),
        ],
        smoothness=[
            smoothness_case("three channels", [1, 3, 5, 4, 6]),
            smoothness_case("two samples", [2, 2, 3, 5, 4]),
        ],
        dice=[
            dice_case("with background", [2, 3, 4, 5, 3], False),
            dice_case("without background", [1, 4, 3, 5, 4], True),
        ],
    )
    target = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "losses-torch.json"
    target.write_text(json.dumps(fixtures, separators=(",", ":")) + "\n")
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

"""PyTorch-on-CPU side of `npm run bench`: times the same workloads (M1,
W1-W5) with Debian's python3-torch and writes bench/results/torch-cpu.json,
which the TypeScript runner reads to print our time over PyTorch's.

Run with the interpreter that has torch: /usr/bin/python3 bench/torch_bench.py
Matmul goes through oneDNN (mkldnn_linear): Debian's torch otherwise uses
the reference BLAS, which is far slower than what PyTorch users get.
"""

import json
import os
import pathlib
import time

import torch
import torch.nn.functional as F

THREADS = os.cpu_count() or 1
torch.set_num_threads(THREADS)
torch.manual_seed(0)


def median_ms(fn, before=None, runs=5, warmup=True):
    if warmup:
        if before:
            before()
        fn()
    times = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[len(times) // 2]


def m1():
    a = torch.randn(1024, 1024).to_mkldnn()
    b = torch.randn(1024, 1024).to_mkldnn()
    return median_ms(lambda: torch._C._nn.mkldnn_linear(a, b, None))


def w1():
    x = torch.randn(1, 16, 64, 64, 64)
    w = torch.randn(16, 16, 3, 3, 3)
    return median_ms(lambda: F.conv3d(x, w, padding=1))


def w2():
    x = torch.randn(1, 16, 64, 64, 64, requires_grad=True)
    w = torch.randn(16, 16, 3, 3, 3, requires_grad=True)
    g = torch.randn(1, 16, 64, 64, 64)
    state = {}

    def forward():
        x.grad = None
        w.grad = None
        state["out"] = F.conv3d(x, w, padding=1)

    return median_ms(lambda: state["out"].backward(g), before=forward)


def voxel_grid(size):
    # grid_sample reads x, y, z = W, H, D in [-1, 1] with align_corners=True.
    axis = torch.linspace(-1, 1, size)
    d, h, w = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([w, h, d], dim=-1)[None]


def w3():
    size = 128
    image = torch.randn(1, 1, size, size, size, requires_grad=True)
    flow = torch.randn(1, 3, size, size, size, requires_grad=True)
    base = voxel_grid(size)

    def run():
        image.grad = None
        flow.grad = None
        grid = base + (flow * (2.0 / (size - 1))).permute(0, 2, 3, 4, 1).flip(-1)
        F.grid_sample(image, grid, align_corners=True).sum().backward()

    return median_ms(run)


def w4():
    size, window = 128, 9
    a = torch.randn(1, 1, size, size, size, requires_grad=True)
    b = torch.randn(1, 1, size, size, size, requires_grad=True)
    ones = torch.ones(1, 1, window, window, window)

    def ncc():
        a.grad = None
        b.grad = None
        box = lambda t: F.conv3d(t, ones, padding=window // 2)
        n = window ** 3
        sa, sb = box(a), box(b)
        saa, sbb, sab = box(a * a), box(b * b), box(a * b)
        ma, mb = sa / n, sb / n
        cross = sab - mb * sa - ma * sb + ma * mb * n
        va = saa - 2 * ma * sa + ma * ma * n
        vb = sbb - 2 * mb * sb + mb * mb * n
        (-(cross * cross / (va * vb + 1e-5)).mean()).backward()

    # VoxelMorph's NCC: five 9^3 box convolutions, each far slower than the
    # separable sums, so one untimed and three timed runs keep this bearable.
    return median_ms(ncc, runs=3)


def w5():
    flow = torch.randn(1, 3, 128, 128, 128, requires_grad=True)

    def run():
        flow.grad = None
        dd = flow[:, :, 1:] - flow[:, :, :-1]
        dh = flow[:, :, :, 1:] - flow[:, :, :, :-1]
        dw = flow[:, :, :, :, 1:] - flow[:, :, :, :, :-1]
        ((dd.pow(2).mean() + dh.pow(2).mean() + dw.pow(2).mean()) / 3).backward()

    return median_ms(run)


def main():
    results = []
    for name, fn in [("M1", m1), ("W1", w1), ("W2", w2), ("W3", w3), ("W4", w4), ("W5", w5)]:
        ms = fn()
        print(f"{name}: {ms:.1f} ms")
        results.append({"name": name, "ms": ms})
    target = pathlib.Path(__file__).resolve().parent / "results" / "torch-cpu.json"
    target.parent.mkdir(exist_ok=True)
    payload = {"torch": torch.__version__, "threads": THREADS, "results": results}
    target.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

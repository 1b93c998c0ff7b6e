"""Write test/fixtures/optim.json, the PyTorch results that test/optim.test.ts replays.

Run with a Python that has torch (here Debian's python3-torch 1.13):

    /usr/bin/python3 scripts/make-optim-fixtures.py

Each case runs a few steps of one torch.optim optimiser (foreach=False, the
single-tensor path) on two small float32 parameters with fixed gradients and
records the parameters after every step. In one step the second parameter
has no gradient, so the optimiser must skip it and keep its step count.
Values are float32 written as the float64 numbers that represent them exactly.
"""

import json
import os

import torch

OUT_PATH = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "optim.json")

SHAPES = [[3, 5], [7]]
STEPS = 6
# The second parameter gets no gradient in this step (0-based).
SKIPPED_STEP = 2

CASES = [
    ("sgd", "SGD", {"lr": 0.1}),
    ("sgd weight decay", "SGD", {"lr": 0.05, "weight_decay": 0.01}),
    ("sgd momentum", "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("sgd momentum dampening", "SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.02}),
    ("sgd nesterov", "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.001}),
    ("adam", "Adam", {"lr": 0.01}),
    ("adam weight decay", "Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adam amsgrad", "Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    ("adamw", "AdamW", {"lr": 0.01, "weight_decay": 0.05}),
    ("adamw amsgrad", "AdamW", {"lr": 0.01, "weight_decay": 0.01, "amsgrad": True}),
]

# PyTorch option names and the camelCase names of the TypeScript options.
OPTION_NAMES = {
    "lr": "lr",
    "momentum": "momentum",
    "dampening": "dampening",
    "weight_decay": "weightDecay",
    "nesterov": "nesterov",
    "betas": "betas",
    "eps": "eps",
    "amsgrad": "amsgrad",
}


def values(t):
    return t.detach().reshape(-1).tolist()


def make_inputs(generator):
    params = [torch.randn(shape, generator=generator) for shape in SHAPES]
    grads = []
    for step in range(STEPS):
        step_grads = []
        for i, shape in enumerate(SHAPES):
            if i == 1 and step == SKIPPED_STEP:
                step_grads.append(None)
                continue
            g = torch.randn(shape, generator=generator)
            # Tiny first gradients, so eps matters in Adam's denominator
            # (sqrt(v_hat) is about 1e-5 at step 1), and a few exact zeros.
            if step == 0:
                g = g * 1e-5
            g[..., 0] = 0.0
            step_grads.append(g)
        grads.append(step_grads)
    return params, grads


def run_case(kind, options, params, grads):
    tensors = [p.clone().requires_grad_(True) for p in params]
    optimiser = getattr(torch.optim, kind)(tensors, foreach=False, **options)
    after = []
    for step_grads in grads:
        for t, g in zip(tensors, step_grads):
            t.grad = None if g is None else g.clone()
        optimiser.step()
        after.append([values(t) for t in tensors])
    return after


def main():
    generator = torch.Generator().manual_seed(1234)
    params, grads = make_inputs(generator)
    cases = []
    for name, kind, options in CASES:
        cases.append({
            "name": name,
            "optimizer": kind,
            "options": {OPTION_NAMES[k]: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
            "expected": run_case(kind, options, params, grads),
        })
    fixture = {
        "torch": torch.__version__,
        "shapes": SHAPES,
        "params": [values(p) for p in params],
        "grads": [[None if g is None else values(g) for g in step] for step in grads],
        "cases": cases,
    }
    with open(OUT_PATH, "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT_PATH)}")


if __name__ == "__main__":
    main()

"""Write the small PyTorch checkpoints that test/checkpoint.test.ts reads.

Run with a Python that has torch (here Debian's python3-torch 1.13):

    /usr/bin/python3 scripts/make-torch-fixtures.py

It writes test/fixtures/torch/*.pth with torch.save and expected.json, which
lists every tensor in each checkpoint as dtype, shape and contiguous
row-major values. int64 values are written as decimal strings because JSON
numbers lose precision past 2**53. The values are exact in float64, so the
test compares them with exact equality. legacy.pth changes from run to run,
because the legacy format keys each storage by its memory address.
"""

import collections
import json
import os

import torch

OUT_DIR = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "torch")


class Opaque:
    """A user class, so the pickle names a global that readers must reject."""

    def __init__(self):
        self.value = 1


def float32_state():
    # A real module's state_dict() carries a _metadata attribute, which the
    # pickle stores with BUILD on the OrderedDict.
    model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.LayerNorm(3))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(15, dtype=torch.float32).view(3, 5) / 8)
        model[0].bias.copy_(torch.tensor([-1.5, 0.25, 3.0]))
    state = model.state_dict()

    base = torch.arange(12, dtype=torch.float32) * 0.5 - 2
    state["base"] = base
    # A slice of the same storage: saved as storage offset 3, one shared file.
    state["offset_slice"] = base[3:8]
    # A transposed view: sizes (3, 4), strides (1, 3).
    state["transposed"] = base.view(4, 3).t()
    # Every other column: strides (6, 2) on the same storage, offset 1.
    state["strided"] = base.view(2, 6)[:, 1::2]
    state["scalar"] = torch.tensor(2.75)
    state["empty"] = torch.zeros(0, 3)
    return state


def dtype_state():
    return collections.OrderedDict(
        [
            ("float16", torch.tensor([1.0, -2.5, 65504.0, 6.1035156e-05, 5.96e-08, 0.0], dtype=torch.float16)),
            ("bfloat16", torch.tensor([1.0, -3.140625, 1.0e30, -1.0e-30, 0.0], dtype=torch.bfloat16)),
            ("float64", torch.tensor([[0.1, -1e300], [5e-324, 3.0]], dtype=torch.float64)),
            ("int64", torch.tensor([0, -1, 2**62 + 1, -(2**63), 2**63 - 1], dtype=torch.int64)),
            ("int32", torch.tensor([-(2**31), 2**31 - 1, 7], dtype=torch.int32)),
            ("int16", torch.tensor([-32768, 32767], dtype=torch.int16)),
            ("int8", torch.tensor([-128, 127, 0], dtype=torch.int8)),
            ("uint8", torch.tensor([0, 255, 17], dtype=torch.uint8)),
            ("bool", torch.tensor([True, False, True])),
            # A transposed float16 view, to gather 2-byte elements.
            ("float16_transposed", torch.arange(6, dtype=torch.float16).view(2, 3).t()),
        ]
    )


def nested_state():
    inner = collections.OrderedDict(
        [("weight", torch.tensor([[1.0, 2.0], [3.0, 4.0]])), ("bias", torch.tensor([0.5, -0.5]))]
    )
    return {
        "model": inner,
        "epoch": 7,
        "name": "tiny",
        "optimizer": {"state": {0: {"momentum": torch.tensor([0.125, 0.25])}}, "lr": 0.01},
        "history": [torch.tensor([1.0]), torch.tensor([2.0, 3.0])],
        "dtype": torch.float32,
        "size": torch.Size([2, 2]),
        "parameter": torch.nn.Parameter(torch.tensor([9.0, 8.0])),
    }


def expected_entry(tensor):
    contiguous = tensor.detach().contiguous()
    if contiguous.dtype in (torch.float16, torch.bfloat16):
        values = contiguous.float().flatten().tolist()
    elif contiguous.dtype == torch.int64:
        values = [str(v) for v in contiguous.flatten().tolist()]
    elif contiguous.dtype == torch.bool:
        values = [int(v) for v in contiguous.flatten().tolist()]
    else:
        values = contiguous.flatten().tolist()
    dtype = str(tensor.dtype).replace("torch.", "")
    return {"dtype": dtype, "shape": list(tensor.shape), "values": values}


def flatten(prefix, value, out):
    if isinstance(value, torch.Tensor):
        out[prefix] = expected_entry(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flatten(f"{prefix}.{index}" if prefix else str(index), item, out)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    checkpoints = {
        "float32.pth": float32_state(),
        "dtypes.pth": dtype_state(),
        "nested.pth": nested_state(),
    }
    expected = {}
    for name, state in checkpoints.items():
        torch.save(state, os.path.join(OUT_DIR, name))
        entries = {}
        flatten("", state, entries)
        expected[name] = entries

    # Files that readers must reject with a clear error.
    legacy = collections.OrderedDict([("weight", torch.ones(2))])
    torch.save(legacy, os.path.join(OUT_DIR, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"weight": torch.ones(2), "object": Opaque()}, os.path.join(OUT_DIR, "custom-class.pth"))
    torch.save({"complex": torch.tensor([1 + 2j], dtype=torch.complex64)}, os.path.join(OUT_DIR, "complex.pth"))

    with open(os.path.join(OUT_DIR, "expected.json"), "w") as file:
        json.dump(expected, file, indent=1, sort_keys=True)
        file.write("\n")


if __name__ == "__main__":
    main()

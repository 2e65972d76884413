"""Fixtures for tests/test_safetensors.c.

There is no `safetensors` package here, so the file format is written by
hand exactly as the safetensors crate (behind the Python package) writes
it: tensors sorted by dtype, descending in the crate's dtype order, then by
name; "__metadata__" first (keys sorted, the crate's map has no order);
compact JSON with raw UTF-8; header padded with spaces to a multiple of 8.

    /usr/bin/python3 scripts/gen_fixtures_safetensors.py

st_reference.safetensors  values the C test rebuilds with mspt's writer and
                          compares byte for byte
st_convert.safetensors    torch float64/float16/bfloat16/int/bool tensors,
                          each with "<name>.f32" = tensor.to(torch.float32)
"""
import json
import math
import os
import struct

from fixtures import FIXTURE_DIR

# The crate's Dtype enum order (it sorts tensors by it, descending).
DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
          "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]


def st_bytes(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw little-endian bytes)."""
    order = sorted(tensors,
                   key=lambda t: (-DTYPES.index(t[1]), t[0].encode("utf-8")))
    header = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    offset = 0
    for name, dtype, shape, raw in order:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":"),
                    ensure_ascii=False).encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)
    return (struct.pack("<Q", len(js)) + js +
            b"".join(raw for _, _, _, raw in order))


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def write(filename, data):
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    with open(os.path.join(FIXTURE_DIR, filename), "wb") as f:
        f.write(data)


# Same names and values as reference_writer() in tests/test_safetensors.c.
reference = [
    ("encoder.weight", "F32", (2, 3), f32([(i - 3) * 0.125 for i in range(6)])),
    ("encoder.bias", "F32", (3,), f32([i * 0.5 for i in range(3)])),
    ("scalar", "F32", (), f32([2.5])),
    ("empty", "F32", (0, 4), b""),
    ("step", "I64", (1,), struct.pack("<q", 123456789012)),
    ("mask", "U8", (2, 5), bytes(i % 2 for i in range(10))),
    ("caf\u00e9 \"q\" \\ \n\t\x01", "F32", (2,), f32([1.0, -1.0])),
]
reference_meta = {"format": "mspt", "epoch": "3",
                  "note": "line1\nline2 \"quoted\" caf\u00e9"}
write("st_reference.safetensors", st_bytes(reference, reference_meta))


def torch_raw(t):
    import torch
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def convert_fixture():
    import torch
    torch.manual_seed(0)
    inf, nan = math.inf, math.nan
    src = {
        "f64": ("F64", torch.tensor([0.0, 1 / 3, -2.5, 1e38, 1e-40, math.pi,
                                     -1e-3], dtype=torch.float64)),
        "f16": ("F16", torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8,
                                     1e-3, inf, -inf, nan, 3.14159],
                                    dtype=torch.float16)),
        "f16_2d": ("F16", torch.randn(2, 3).to(torch.float16)),
        "bf16": ("BF16", torch.tensor([1.0, -3.140625, 1e30, 1e-30, inf, -inf,
                                       nan, 0.0, 1e-40],
                                      dtype=torch.bfloat16)),
        "bf16_3d": ("BF16", torch.randn(2, 1, 3).to(torch.bfloat16)),
        "i64": ("I64", torch.tensor([-3, 2 ** 40, 2 ** 62], dtype=torch.int64)),
        "i32": ("I32", torch.tensor([-5, 0, 7, 2 ** 31 - 1, -2 ** 31],
                                    dtype=torch.int32)),
        "i16": ("I16", torch.tensor([-32768, 5, 32767], dtype=torch.int16)),
        "i8": ("I8", torch.tensor([-128, 0, 127], dtype=torch.int8)),
        "u8": ("U8", torch.tensor([0, 255, 17], dtype=torch.uint8)),
        "bool": ("BOOL", torch.tensor([True, False, True])),
    }
    tensors = []
    for name, (dtype, t) in src.items():
        tensors.append((name, dtype, tuple(t.shape), torch_raw(t)))
        e = t.to(torch.float32)
        tensors.append((name + ".f32", "F32", tuple(e.shape), torch_raw(e)))
    write("st_convert.safetensors", st_bytes(tensors, {"format": "pt"}))


convert_fixture()

"""A tiny safetensors reader and writer for numpy arrays and torch tensors.

There is no `safetensors` package here.  The format: an 8-byte
little-endian header length N, N bytes of JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}, then the raw little-endian data.  The writer lays tensors out
as the safetensors crate does (descending dtype order, then by name;
metadata keys sorted; header padded with spaces to a multiple of 8), so
mspt's reader accepts the files and mspt's writer would produce the same
bytes.

    save("out.safetensors", {"x": tensor, "mask": uint8_array}, {"loss": "0.1"})
    tensors, meta = load("out.safetensors")        # numpy arrays
    tensors, meta = load("out.safetensors", torch=True)
"""
import json
import struct

import numpy as np

# The crate's Dtype enum order (it sorts tensors by it, descending).
_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
          "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
_TO_NP = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16,
          "U16": np.uint16, "F16": np.float16, "I32": np.int32,
          "U32": np.uint32, "F32": np.float32, "F64": np.float64,
          "I64": np.int64, "U64": np.uint64}
_FROM_NP = {np.dtype(v): k for k, v in _TO_NP.items()}


def _as_numpy(t):
    if hasattr(t, "detach"):  # a torch tensor
        t = t.detach().cpu().contiguous().numpy()
    return np.ascontiguousarray(t)


def save(path, tensors, metadata=None):
    """tensors: {name: numpy array or torch tensor}; metadata: {str: str}."""
    arrays = {}
    for name, t in tensors.items():
        a = _as_numpy(t)
        if a.dtype not in _FROM_NP:
            raise ValueError("%s: dtype %s has no safetensors name" % (name, a.dtype))
        arrays[name] = a.astype(a.dtype.newbyteorder("<"), copy=False)
    names = sorted(arrays, key=lambda n: (-_ORDER.index(_FROM_NP[arrays[n].dtype]),
                                          n.encode("utf-8")))
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    offset = 0
    for n in names:
        size = arrays[n].nbytes
        header[n] = {"dtype": _FROM_NP[arrays[n].dtype],
                     "shape": list(arrays[n].shape),
                     "data_offsets": [offset, offset + size]}
        offset += size
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for n in names:
            f.write(arrays[n].tobytes())


def load(path, torch=False):
    """Returns ({name: array}, metadata dict); torch tensors if torch=True."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        a = np.frombuffer(data[b:e], dtype=np.dtype(_TO_NP[h["dtype"]]).newbyteorder("<"))
        out[name] = a.reshape(h["shape"]).copy()
    if torch:
        import torch as _torch
        out = {k: _torch.from_numpy(v) for k, v in out.items()}
    return out, meta

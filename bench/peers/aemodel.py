"""aeserve's conv-ae/v1 autoencoder in PyTorch, loaded from aeserve's own weights.

Shared by the FastAPI peer (fastapi_server.py) and the ONNX export (export_onnx.py),
so that both peers compute the same architecture with the same weights as the Go server:

  encoder  Conv(1->32, 3x3, pad 1) ReLU MaxPool2  Conv(32->32, 3x3, pad 1) ReLU MaxPool2  -> [32,7,7]
  decoder  ConvT(32->32, 3x3, s2, "same") ReLU  ConvT(32->32, 3x3, s2, "same") ReLU
           Conv(32->1, 3x3, pad 1) sigmoid                                               -> [1,28,28]

Keras/TensorFlow "same" padding for a 3x3 stride-2 transposed convolution puts all the
padding after the input: PyTorch's ConvTranspose2d(padding=0) gives (2H+1)x(2W+1), whose
first 2H rows and 2W columns are that output (output pixel 2i+kh gets input pixel i times
tap kh).

Also here: the .aew reader, the model fingerprint, the binary latent parser and the PNG
conversions, i.e. everything aeserve's README specifies that a peer needs.
"""

import hashlib
import io
import json
import os
import struct

import numpy as np
import torch
from PIL import Image
from torch import nn

SIDE = 28
LATENT_SHAPE = (32, 7, 7)


class ConvTranspose2dSame(nn.ConvTranspose2d):
    """3x3 stride-2 transposed convolution with TensorFlow "same" padding."""

    def __init__(self, cin, cout):
        super().__init__(cin, cout, kernel_size=3, stride=2, padding=0)

    def forward(self, x):
        y = super().forward(x)
        return y[:, :, : 2 * x.shape[2], : 2 * x.shape[3]]


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        return torch.max_pool2d(torch.relu(self.conv2(x)), 2)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.deconv1 = ConvTranspose2dSame(32, 32)
        self.deconv2 = ConvTranspose2dSame(32, 32)
        self.conv3 = nn.Conv2d(32, 1, 3, padding=1)

    def forward(self, z):
        z = torch.relu(self.deconv1(z))
        z = torch.relu(self.deconv2(z))
        return torch.sigmoid(self.conv3(z))


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()

    def forward(self, x):
        return self.decoder(self.encoder(x))


def read_aew(path):
    """Reads an aeserve .aew file into {name: float32 ndarray}."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:4] != b"AEW1":
        raise ValueError(f"{path}: not an AEW1 file")
    (count,) = struct.unpack_from("<I", b, 4)
    off, out = 8, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", b, off)
        off += 2
        name = b[off : off + n].decode("utf-8")
        off += n
        ndim = b[off]
        off += 1
        dims = struct.unpack_from(f"<{ndim}I", b, off)
        off += 4 * ndim
        size = int(np.prod(dims))
        out[name] = np.frombuffer(b, "<f4", size, off).reshape(dims).copy()
        off += 4 * size
    if off != len(b):
        raise ValueError(f"{path}: {len(b) - off} trailing bytes")
    return out


def load_weights(weights_dir):
    """Returns (manifest, {name: ndarray}, fingerprint bytes) for one model directory.

    Checks each file against the manifest's SHA-256, as aeserve does. The fingerprint is
    the first 8 bytes of SHA-256(sha256(encoder.aew) || sha256(decoder.aew)).
    """
    with open(os.path.join(weights_dir, "manifest.json")) as f:
        man = json.load(f)
    tensors, digests = {}, []
    stages = man.get("stages") or man["halves"]  # format 2 names them stages, format 1 halves
    for half in ("encoder", "decoder"):
        path = os.path.join(weights_dir, stages[half]["file"])
        with open(path, "rb") as f:
            d = hashlib.sha256(f.read()).digest()
        if d.hex() != stages[half]["sha256"]:
            raise ValueError(f"{path}: SHA-256 does not match the manifest")
        digests.append(d)
        tensors.update(read_aew(path))
    return man, tensors, hashlib.sha256(b"".join(digests)).digest()[:8]


def load_model(weights_dir):
    """The autoencoder with aeserve's weights, in eval mode, and its fingerprint."""
    man, tensors, fp = load_weights(weights_dir)
    if man.get("architecture") != "conv-ae/v1":
        raise ValueError(f"unsupported architecture {man.get('architecture')!r}")
    model = Autoencoder()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    return model.eval(), fp


def _uvarint(b, off):
    v, shift = 0, 0
    while True:
        if off >= len(b) or shift > 63:
            raise ValueError("truncated or overlong varint")
        c = b[off]
        off += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, off
        shift += 7


def parse_latent(b):
    """Parses aeserve's binary latent (version 1, float32). Returns (fingerprint, array)."""
    if len(b) < 11 or b[0] != 0xAE:
        raise ValueError("not a binary latent")
    if b[1] != 0x11:
        raise ValueError("unsupported latent version or dtype")
    fp, ndim, off = bytes(b[2:10]), b[10], 11
    if not 1 <= ndim <= 8:
        raise ValueError("bad ndim")
    dims = []
    for _ in range(ndim):
        d, off = _uvarint(b, off)
        if d < 1:
            raise ValueError("zero dimension")
        dims.append(d)
    size = int(np.prod(dims))
    if len(b) - off != 4 * size:
        raise ValueError("data length does not match the shape")
    return fp, np.frombuffer(b, "<f4", size, off).reshape(dims)


def png_to_array(data):
    """A 28x28 PNG as float32 [1,1,28,28] in [0,1] (grey = luminance, as aeserve)."""
    im = Image.open(io.BytesIO(data))
    if im.size != (SIDE, SIDE):
        raise ValueError(f"image is {im.size[0]}x{im.size[1]}, want 28x28")
    if im.mode != "L":
        im = im.convert("L")
    return (np.asarray(im, dtype=np.float32) / 255.0).reshape(1, 1, SIDE, SIDE)


def array_to_png(y):
    """[..., 28, 28] in [0,1] as an 8-bit grey PNG: round(clip(y,0,1)*255), fastest deflate."""
    px = np.rint(np.clip(np.asarray(y, dtype=np.float32).reshape(SIDE, SIDE), 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px, "L").save(buf, "PNG", compress_level=1)
    return buf.getvalue()

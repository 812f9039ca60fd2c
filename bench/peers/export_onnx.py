"""Exports aeserve's model, built in PyTorch from aeserve's weights (aemodel.py), to ONNX
for the Node.js peer. Run by bench/load.sh at benchmark time; the .onnx files are outputs,
never committed.

  /usr/bin/python3 export_onnx.py --weights ../../weights/denoise --out ../out/onnx

Writes full.onnx (image [N,1,28,28] -> image), decoder.onnx (latent [N,32,7,7] -> image)
and fingerprint.txt (hex, for the peer's 409 check on latents).
"""

import argparse
import os

import torch

import aemodel


def export(module, example, path, in_name):
    torch.onnx.export(
        module, (example,), path, opset_version=17,
        input_names=[in_name], output_names=["y"],
        dynamic_axes={in_name: {0: "n"}, "y": {0: "n"}},
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    model, fp = aemodel.load_model(args.weights)
    with torch.no_grad():
        export(model, torch.rand(1, 1, 28, 28), os.path.join(args.out, "full.onnx"), "x")
        export(model.decoder, torch.rand(1, 32, 7, 7), os.path.join(args.out, "decoder.onnx"), "z")
    with open(os.path.join(args.out, "fingerprint.txt"), "w") as f:
        f.write(fp.hex() + "\n")
    print(f"exported {args.out}/full.onnx and decoder.onnx, fingerprint {fp.hex()}")


if __name__ == "__main__":
    main()

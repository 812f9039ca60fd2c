"""Peer for bench/load.sh: aeserve's denoise model served by FastAPI + PyTorch.

The deployment a Python user would typically write: one uvicorn worker process (uvloop and
httptools when installed, as with uvicorn[standard]), torch.set_num_threads(2), and the
model run per request in Starlette's thread pool (what FastAPI does for a plain `def`
endpoint), so the event loop keeps accepting while PyTorch computes. No batching.

Same routes and wire formats as aeserve for what the benchmark sends:
  POST /v1/denoise   multipart field `img` or a raw image/png body -> image/png
  POST /v1/decode    application/octet-stream binary latent [N,32,7,7] (N = 1) -> image/png
  GET  /readyz, /healthz

  /usr/bin/python3 fastapi_server.py --weights ../../weights/denoise --port 8081
"""

import argparse
import logging

import torch
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import aemodel

app = FastAPI()
MODEL = None
FINGERPRINT = b""


def problem(status, detail):
    return JSONResponse({"status": status, "detail": detail}, status_code=status,
                        media_type="application/problem+json")


def denoise_png(data):
    x = torch.from_numpy(aemodel.png_to_array(data))
    with torch.inference_mode():
        y = MODEL(x)
    return aemodel.array_to_png(y.numpy())


def decode_latent(z):
    with torch.inference_mode():
        y = MODEL.decoder(torch.from_numpy(z.copy()))
    return aemodel.array_to_png(y.numpy())


@app.get("/healthz")
@app.get("/readyz")
def ready():
    return {"status": "ok"}


@app.post("/v1/denoise")
async def denoise(request: Request):
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        img = form.get("img")
        if img is None or isinstance(img, str):
            return problem(400, "multipart field img missing")
        data = await img.read()
    elif ctype.split(";")[0].strip() == "image/png":
        data = await request.body()
    else:
        return problem(415, "want multipart/form-data or image/png")
    try:
        png = await run_in_threadpool(denoise_png, data)
    except ValueError as e:
        return problem(422, str(e))
    except OSError as e:  # PIL: not a PNG
        return problem(400, str(e))
    return Response(png, media_type="image/png")


@app.post("/v1/decode")
async def decode(request: Request):
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/octet-stream":
        return problem(415, "want application/octet-stream")
    try:
        fp, z = aemodel.parse_latent(await request.body())
    except ValueError as e:
        return problem(400, str(e))
    if fp != FINGERPRINT:
        return problem(409, "latent from other weights")
    if z.shape != (1,) + aemodel.LATENT_SHAPE:
        return problem(422, f"latent shape {list(z.shape)}, this peer decodes [1,32,7,7]")
    return Response(await run_in_threadpool(decode_latent, z), media_type="image/png")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True, help="model directory (manifest.json, *.aew)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--access-log", action="store_true")
    args = ap.parse_args()

    global MODEL, FINGERPRINT
    torch.set_num_threads(args.threads)
    MODEL, FINGERPRINT = aemodel.load_model(args.weights)
    with torch.inference_mode():  # first call pays one-off allocation and dispatch setup
        MODEL(torch.zeros(1, 1, 28, 28))
    logging.getLogger("uvicorn").info("model fingerprint %s, %d threads", FINGERPRINT.hex(), args.threads)
    uvicorn.run(app, host=args.host, port=args.port, workers=1, access_log=args.access_log,
                log_level="info" if args.access_log else "warning")


if __name__ == "__main__":
    main()

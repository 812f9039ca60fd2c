// Peer for bench/load.sh: aeserve's denoise model served by Node.js, calling ONNX Runtime
// (onnxruntime-node, CPU) once per request. No batching: the usual small Node deployment,
// node:http + busboy for multipart + pngjs for PNG.
//
// The ONNX files are exported from the PyTorch model built from aeserve's weights by
// ../export_onnx.py (full.onnx, decoder.onnx, fingerprint.txt in --models).
//
//   node server.js --models ../../out/onnx --port 8082 [--threads 1]
//
// --threads is ONNX Runtime's intra-op thread count. One is the default here because it
// measured faster than two on the 2-core benchmark machine for batch-1 requests: with
// two, ORT's spinning pool threads compete with the event loop and the load generator.
//
// Same routes and wire formats as aeserve for what the benchmark sends:
//   POST /v1/denoise  multipart field `img` or a raw image/png body -> image/png
//   POST /v1/decode   application/octet-stream binary latent [1,32,7,7] -> image/png
//   GET  /readyz, /healthz
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { parseArgs } = require('node:util');

const busboy = require('busboy');
const ort = require('onnxruntime-node');
const { PNG } = require('pngjs');

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const MAX_BODY = 1 << 20;

const { values: opts } = parseArgs({
  options: {
    models: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8082' },
    threads: { type: 'string', default: '1' },
  },
});

class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// pngToInput decodes a 28×28 PNG into float32 [1,1,28,28] in [0,1]; colour is reduced to
// luminance with alpha over black, as aeserve does.
function pngToInput(buf) {
  let png;
  try {
    png = PNG.sync.read(buf);
  } catch (e) {
    throw new HttpError(400, `malformed PNG: ${e.message}`);
  }
  if (png.width !== SIDE || png.height !== SIDE) {
    throw new HttpError(422, `image is ${png.width}×${png.height}, want 28×28`);
  }
  const x = new Float32Array(PIXELS);
  const d = png.data; // RGBA, 8 bits per channel
  for (let i = 0; i < PIXELS; i++) {
    const r = d[4 * i], g = d[4 * i + 1], b = d[4 * i + 2], a = d[4 * i + 3];
    const grey = r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b;
    x[i] = (grey * a) / (255 * 255);
  }
  return new ort.Tensor('float32', x, [1, 1, SIDE, SIDE]);
}

// outputToPNG writes round(clip(y,0,1)·255) as an 8-bit grey PNG, fastest deflate.
function outputToPNG(y) {
  const px = Buffer.allocUnsafe(PIXELS);
  for (let i = 0; i < PIXELS; i++) {
    px[i] = Math.round(Math.min(Math.max(y[i], 0), 1) * 255);
  }
  return PNG.sync.write(
    { width: SIDE, height: SIDE, data: px },
    { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8, deflateLevel: 1 },
  );
}

// parseLatent reads aeserve's binary latent, version 1, float32 (see aeserve's README).
function parseLatent(b, fingerprint) {
  if (b.length < 11 || b[0] !== 0xae) throw new HttpError(400, 'not a binary latent');
  if (b[1] !== 0x11) throw new HttpError(400, 'unsupported latent version or dtype');
  const ndim = b[10];
  if (ndim < 1 || ndim > 8) throw new HttpError(400, 'bad ndim');
  let off = 11;
  const dims = [];
  for (let k = 0; k < ndim; k++) {
    let v = 0, mul = 1, c;
    do {
      if (off >= b.length || mul > 2 ** 49) throw new HttpError(400, 'bad varint');
      c = b[off++];
      v += (c & 0x7f) * mul;
      mul *= 128;
    } while (c & 0x80);
    if (v < 1) throw new HttpError(400, 'zero dimension');
    dims.push(v);
  }
  const size = dims.reduce((p, v) => p * v, 1);
  if (b.length - off !== 4 * size) throw new HttpError(400, 'data length does not match the shape');
  if (!b.subarray(2, 10).equals(fingerprint)) throw new HttpError(409, 'latent from other weights');
  if (dims.join(',') !== '1,32,7,7') throw new HttpError(422, `latent shape [${dims}], this peer decodes [1,32,7,7]`);
  const z = new Float32Array(size);
  for (let i = 0; i < size; i++) z[i] = b.readFloatLE(off + 4 * i);
  return new ort.Tensor('float32', z, dims);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > MAX_BODY) reject(new HttpError(413, 'body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function readMultipartImg(req) {
  return new Promise((resolve, reject) => {
    let bb;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: MAX_BODY, files: 1 } });
    } catch (e) {
      reject(new HttpError(400, e.message));
      return;
    }
    let img = null;
    bb.on('file', (name, stream) => {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        if (name === 'img') img = Buffer.concat(chunks);
      });
    });
    bb.on('close', () => (img ? resolve(img) : reject(new HttpError(400, 'multipart field img missing'))));
    bb.on('error', (e) => reject(new HttpError(400, e.message)));
    req.pipe(bb);
  });
}

function mediaType(req) {
  return (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
}

async function main() {
  const so = {
    executionProviders: ['cpu'],
    intraOpNumThreads: Number(opts.threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  };
  const full = await ort.InferenceSession.create(path.join(opts.models, 'full.onnx'), so);
  const decoder = await ort.InferenceSession.create(path.join(opts.models, 'decoder.onnx'), so);
  const fingerprint = Buffer.from(fs.readFileSync(path.join(opts.models, 'fingerprint.txt'), 'utf8').trim(), 'hex');
  await full.run({ x: new ort.Tensor('float32', new Float32Array(PIXELS), [1, 1, SIDE, SIDE]) });

  async function handle(req, res) {
    if (req.method === 'GET' && (req.url === '/readyz' || req.url === '/healthz')) {
      return [200, 'application/json', Buffer.from('{"status":"ok"}')];
    }
    const route = req.url.split('?')[0];
    if (req.method === 'POST' && route === '/v1/denoise') {
      const mt = mediaType(req);
      let png;
      if (mt === 'multipart/form-data') png = await readMultipartImg(req);
      else if (mt === 'image/png') png = await readBody(req);
      else throw new HttpError(415, 'want multipart/form-data or image/png');
      const out = await full.run({ x: pngToInput(png) });
      return [200, 'image/png', outputToPNG(out.y.data)];
    }
    if (req.method === 'POST' && route === '/v1/decode') {
      if (mediaType(req) !== 'application/octet-stream') throw new HttpError(415, 'want application/octet-stream');
      const out = await decoder.run({ z: parseLatent(await readBody(req), fingerprint) });
      return [200, 'image/png', outputToPNG(out.y.data)];
    }
    throw new HttpError(404, 'no such route');
  }

  const server = http.createServer((req, res) => {
    handle(req, res).then(
      ([status, type, body]) => {
        res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length });
        res.end(body);
      },
      (err) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) console.error(err);
        const body = Buffer.from(JSON.stringify({ status, detail: err.message }));
        res.writeHead(status, { 'Content-Type': 'application/problem+json', 'Content-Length': body.length });
        res.end(body);
        req.resume(); // drain what is left of a refused body so the connection can be reused
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(opts.port), opts.host, () => {
    console.log(`node peer on ${opts.host}:${opts.port}, onnxruntime-node ${require('onnxruntime-node/package.json').version}, ` +
      `${opts.threads} intra-op threads, fingerprint ${fingerprint.toString('hex')}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

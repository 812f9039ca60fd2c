// Pixels, PNGs, noise and latents, in the page. Images are 28×28, one byte
// a pixel, white digit on black, as MNIST and the server have them.

export const SIDE = 28;
export const LEN = SIDE * SIDE;

// pngPixels decodes a PNG (Blob) to its grey levels, one byte a pixel
// (the red channel: the server's PNGs are grey).
export async function pngPixels(blob) {
  const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(bmp, 0, 0);
  const rgba = g.getImageData(0, 0, bmp.width, bmp.height).data;
  const px = new Uint8Array(bmp.width * bmp.height);
  for (let i = 0; i < px.length; i++) px[i] = rgba[4 * i];
  bmp.close();
  return { px, width: c.width, height: c.height };
}

// b64PNG is a PNG the server sent in JSON (standard base64) as a Blob.
export function b64PNG(s) {
  return new Blob([Uint8Array.from(atob(s), (c) => c.charCodeAt(0))], { type: 'image/png' });
}

// greyPNG encodes grey levels as an 8-bit greyscale PNG, as the server
// writes its own: the smallest honest PNG of an image, to weigh a latent
// against. (A canvas would write RGBA.)
export async function greyPNG(px, width = SIDE, height = SIDE) {
  const raw = new Uint8Array((width + 1) * height); // filter byte 0 before each row
  for (let y = 0; y < height; y++) raw.set(px.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const zlib = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit, greyscale, deflate, no filter, no interlace
  const sig = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib), chunk('IEND', new Uint8Array(0))], { type: 'image/png' });
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b) {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// mulberry32 is a small seeded generator of uniforms in [0, 1).
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// addNoise is the training's noise on grey levels: clip(x + level·N(0,1),
// 0, 1) on x in [0, 1], the normal deviates from a generator seeded with
// seed (Box–Muller), so the same drawing, level and seed give the same
// noisy image. Level 0 returns the pixels unchanged.
export function addNoise(px, level, seed) {
  if (!(level > 0)) return px.slice();
  const u = mulberry32(seed);
  const out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const th = 2 * Math.PI * u();
    const z = [r * Math.cos(th), r * Math.sin(th)];
    for (let k = 0; k < 2 && i + k < px.length; k++) {
      const v = px[i + k] / 255 + level * z[k];
      out[i + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
  }
  return out;
}

// parseLatent reads the binary latent (README, "Binary latent, version 1"):
// magic 0xAE, version<<4|dtype, 8 bytes of fingerprint, ndim, the dims as
// LEB128 varints, an IEEE half scale for int8, then the values
// little-endian. float32, float16 and int8 are read; values are the numbers
// the latent stands for (int8: data·scale), scale is int8's (else null) and
// headerBytes everything before the data, the scale included.
export function parseLatent(buf) {
  const b = new Uint8Array(buf);
  const dv = new DataView(buf);
  if (b.length < 12 || b[0] !== 0xae) throw new Error('not a binary latent (magic)');
  const version = b[1] >> 4;
  const dtype = b[1] & 15;
  if (version !== 1) throw new Error(`binary latent version ${version}, want 1`);
  const fingerprint = Array.from(b.subarray(2, 10), (x) => x.toString(16).padStart(2, '0')).join('');
  const ndim = b[10];
  let o = 11;
  const shape = [];
  for (let d = 0; d < ndim; d++) {
    let v = 0;
    let shift = 0;
    for (;;) {
      const x = b[o++];
      v += (x & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(x & 0x80)) break;
    }
    shape.push(v);
  }
  let scale = null;
  if (dtype === 3) {
    scale = half(dv.getUint16(o, true));
    o += 2;
  }
  const n = shape.reduce((a, x) => a * x, 1);
  const size = { 1: 4, 2: 2, 3: 1 }[dtype];
  if (!size) throw new Error(`binary latent dtype ${dtype} is not known`);
  if (b.length !== o + n * size) throw new Error(`binary latent of ${b.length} bytes, not ${o + n * size} as its shape ${shape.join('×')} says`);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 1: values[i] = dv.getFloat32(o + 4 * i, true); break;
      case 2: values[i] = half(dv.getUint16(o + 2 * i, true)); break;
      default: values[i] = dv.getInt8(o + i) * scale; // int8
    }
  }
  const names = { 1: 'float32', 2: 'float16', 3: 'int8' };
  return { fingerprint, shape, dtype: names[dtype], scale, values, headerBytes: o, bytes: b.length };
}

function half(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

// VIRIDIS is a few stops of matplotlib's viridis, interpolated by heat():
// dark for low values, yellow for high, readable in grey too.
const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

// heat maps t in [0, 1] to an RGB colour.
export function heat(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
}

// formatBytes writes a byte count with thousands separators.
export function formatBytes(n) {
  return `${n.toLocaleString('en-US')} bytes`;
}

// formatMs writes a latency.
export function formatMs(ms) {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

// ONNX Runtime's side of bench/kernels.sh: the same model's full pass
// (full.onnx, exported by ../export_onnx.py from the same weights) at the
// batch sizes aeserve's BenchmarkInfer uses, timed the same way: a warm-up,
// then as many runs as fit in --time seconds, with the input reused.
//
//   node kernels.js --model ../../out/onnx/full.onnx [--threads 2] [--time 1] [--batches 1,64]
//
// Prints one line per batch size in Go's benchmark format, so bench/kernels.sh
// parses it with the rest:
//   BenchmarkORT/threads=2/batch=64  <runs>  <ns/op> ns/op  <img/s> images/s
'use strict';
const ort = require('onnxruntime-node');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function main() {
  const model = arg('model');
  if (!model) throw new Error('--model is required');
  const threads = Number(arg('threads', '2'));
  const seconds = Number(arg('time', '1'));
  const batches = arg('batches', '1,8,64,256').split(',').map(Number);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  for (const n of batches) {
    const data = new Float32Array(n * 784);
    let seed = 1;
    for (let i = 0; i < data.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      data[i] = seed / 2147483648;
    }
    const feeds = { x: new ort.Tensor('float32', data, [n, 1, 28, 28]) };
    for (let i = 0; i < 20; i++) await session.run(feeds);
    let runs = 0;
    const start = process.hrtime.bigint();
    const until = start + BigInt(Math.round(seconds * 1e9));
    let now = start;
    while (now < until) {
      await session.run(feeds);
      runs++;
      now = process.hrtime.bigint();
    }
    const ns = Number(now - start) / runs;
    console.log(`BenchmarkORT/threads=${threads}/batch=${n}\t${runs}\t${ns.toFixed(0)} ns/op\t${((n * 1e9) / ns).toFixed(1)} images/s`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

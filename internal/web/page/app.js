// The page: draw a digit (or pick an image), and every view shows what the
// server's models make of it. This module owns the controls, the model
// list and the run of an input; the views (views.js) own what is shown.

import { Api } from './api.js';
import { drawExample, EXAMPLES } from './examples.js';
import { Pad } from './pad.js';
import { addNoise, b64PNG, greyPNG, pngPixels } from './pixels.js';
import { el } from './ui.js';
import { views } from './views.js';

const $ = (id) => document.getElementById(id);

// app is what views get: the API, the models (GET /v1/models, whose
// entries carry what GET /v1/models/{name} does: operations, latent_shape,
// metrics.scores…) and the selected one. It is also window.aeserve, for the
// browser test (settled(), last) and for the curious.
const app = {
  api: new Api(() => $('token').value.trim()),
  models: [],
  model: null,
  quant: null, // the dtype /v1/encode sends the latent in (?quant=), as the sender and receiver view chose it; null is float32
  last: null, // the last run: {model, input, noisy} (PNG Blobs)
  track, // runs a view's own work (a control it has) as a run is run
  settled, // resolves once nothing is scheduled, running or tracked
  rerun: () => schedule(0), // runs the input again (views lay out for the width they have)
};
window.aeserve = app;

const pad = new Pad($('pad'), (final) => {
  source = pad.empty ? null : { pad: true };
  schedule(final ? 0 : THROTTLE);
});
let source = null; // {pad: true} or {file: File}

// While a stroke goes on, the views update at most every THROTTLE ms and
// runs never overlap: a change during a run starts one more run after it.
const THROTTLE = 250;
let timer = null;
let running = false;
let again = false;
let tracked = 0;
let seq = 0;
let waiters = [];
let tokenTimer = null; // the token field's debounce: the models are loaded again with it

function schedule(delay) {
  if (delay > 0 && timer) return; // throttled: the pending run will see this change
  clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    start();
  }, delay);
}

async function start() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  document.body.dataset.busy = 'true';
  try {
    await runInput(++seq);
  } finally {
    running = false;
    if (again) {
      again = false;
      start();
    } else settle();
  }
}

function idle() {
  return !timer && !tokenTimer && !running && tracked === 0;
}

function settle() {
  if (!idle()) return;
  delete document.body.dataset.busy;
  const w = waiters;
  waiters = [];
  for (const f of w) f();
}

function settled() {
  return new Promise((resolve) => {
    waiters.push(resolve);
    settle();
  });
}

async function track(p) {
  tracked++;
  try {
    await p;
    showError(null);
  } catch (err) {
    showError(err);
  } finally {
    tracked--;
    settle();
  }
}

// The views, each in a section of its own, shown when it applies.
const mounted = views.map((v) => {
  const h = el('h2', { id: `view-${v.id}-h`, text: v.title });
  const body = el('div', { class: 'view-body' });
  const section = el('section', { class: 'view', id: `view-${v.id}`, 'aria-labelledby': h.id }, h, body);
  section.hidden = true;
  $('views').append(section);
  return { v, section, inst: v.mount(body, app) };
});
const shown = () => mounted.filter((m) => !m.section.hidden);

function modelsChanged() {
  for (const m of mounted) {
    m.section.hidden = !app.model || !m.v.applies(app);
    m.inst.modelsChanged?.();
  }
}

function clearViews() {
  for (const m of mounted) m.inst.clear?.();
  app.last = null;
}

// runInput runs the current input through the views. ctx, what each
// view's update gets:
//   api, model, models   as app's
//   input                the 28×28 image as the model sees it, from the
//                        server (fit=true&include=input): {png, px, answer}
//   noisy                input with the noise level and seed set, as sent
//                        to every later call: {png, px, level, seed, ms}
//   once(key, fn)        fn(), called once per run for all views
//   encode()             POST /v1/encode of noisy, the binary latent, in
//                        app.quant's dtype (?quant=; float32 for null)
//   reconstruct()        POST /v1/reconstruct of noisy, one PNG
//   current()            false once a newer run has started
async function runInput(n) {
  const model = app.model;
  const current = () => n === seq;
  if (!model || !source) {
    clearViews();
    showError(null);
    return;
  }
  let ctx;
  try {
    const blob = source.file || (await pad.png());
    const input = await prepare(model, blob);
    const level = Number($('noise').value);
    const seed = Math.max(0, Math.floor(Number($('seed').value) || 0));
    const t0 = performance.now();
    const px = addNoise(input.px, level, seed);
    const png = level > 0 ? await greyPNG(px) : input.png;
    const noisy = { png, px, level, seed, ms: performance.now() - t0 };
    const memo = new Map();
    const q = { model: model.name };
    const eq = app.quant && app.quant !== 'float32' ? { ...q, quant: app.quant } : q;
    ctx = {
      api: app.api, model, models: app.models, input, noisy, current,
      once(key, fn) {
        if (!memo.has(key)) memo.set(key, fn());
        return memo.get(key);
      },
      encode: () => ctx.once('encode', () => app.api.post('/v1/encode', png, eq, 'application/octet-stream')),
      reconstruct: () => ctx.once('reconstruct', () => app.api.post('/v1/reconstruct', png, q, 'image/png')),
    };
    app.last = { model: model.name, input: input.png, noisy: png };
  } catch (err) {
    clearViews();
    showError(err);
    return;
  }
  const results = await Promise.allSettled(shown().map((m) => m.inst.update?.(ctx)));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  showError(failed.length ? failed : null);
}

// prepare asks the server for the image as the model will see it: sent
// with fit=true (MNIST's preparation: crop, 20×20, centre of mass) and
// include=input, on the cheapest route the model takes.
async function prepare(model, blob) {
  const op = ['score', 'reconstruct', 'encode', 'classify'].find((o) => model.operations.includes(o));
  const a = await app.api.post(`/v1/${op}`, blob, { model: model.name, fit: 'true', include: 'input' }, 'application/json');
  const png = b64PNG(a.json().inputs[0]);
  const { px } = await pngPixels(png);
  return { png, px, answer: a };
}

// showError shows the server's problems (title and detail), or hides the
// box for null.
function showError(errs) {
  const box = $('error');
  if (!errs) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const seen = new Set();
  const items = [];
  for (const e of [].concat(errs)) {
    const key = `${e.title}|${e.detail}`;
    if (seen.has(key)) continue;
    seen.add(key);
    items.push(el('p', {},
      el('strong', { class: 'problem-title', text: e.title || 'Error' }),
      e.detail || e.message ? ' ' : '',
      el('span', { class: 'problem-detail', text: e.detail || (e.title ? '' : String(e.message || e)) }),
      e.path ? el('span', { class: 'problem-call', text: ` (${e.path})` }) : ''));
    if (e.status === 401) {
      items.push(el('p', { text: 'This server asks for a bearer token: enter it under Settings.' }));
    }
  }
  box.replaceChildren(...items);
  box.hidden = false;
}

// loadModels fills the model list (autoencoders; the classifier has a view
// of its own) and shows the views that apply.
let retry = null;
async function loadModels() {
  clearTimeout(retry);
  tokenTimer = null;
  tracked++;
  const sel = $('model');
  try {
    const list = await app.api.models();
    app.models = list.models;
    const aes = app.models.filter((m) => m.task !== 'classifier' && m.latent_shape);
    const keep = app.model?.name;
    sel.replaceChildren(...aes.map((m) => el('option', { value: m.name, text: `${m.name} (latent ${m.latent_shape.join('×')})` })));
    const pick = aes.find((m) => m.name === keep) || aes.find((m) => m.name === list.default) || aes[0];
    if (pick) sel.value = pick.name;
    selectModel();
    $('status').textContent = `${app.models.length} models served. Draw a digit.`;
    showError(null);
  } catch (err) {
    app.models = [];
    app.model = null;
    sel.replaceChildren();
    modelsChanged();
    $('status').textContent = 'No models yet.';
    showError(err);
    if (err.status === 503) retry = setTimeout(loadModels, 2000); // loading or training
  } finally {
    tracked--;
    settle();
  }
}

function selectModel() {
  app.model = app.models.find((m) => m.name === $('model').value) || null;
  $('model-desc').textContent = app.model ? describe(app.model) : '';
  modelsChanged();
  clearViews();
  schedule(0);
}

function describe(m) {
  const bits = [m.architecture];
  if (m.description) bits.push(m.description);
  if (m.code) bits.push(`code: ${m.code.numbers} numbers, ${m.code.binary_bytes} bytes`);
  if (m.trained_on_noise) bits.push('trained on noisy digits');
  return bits.join('. ');
}

let example = 0; // the next example digit the button draws

$('example').addEventListener('click', () => {
  pad.clear(false);
  drawExample(pad, example++ % EXAMPLES.length);
});
$('clear').addEventListener('click', () => pad.clear());
$('model').addEventListener('change', selectModel);
$('noise').addEventListener('input', () => {
  $('noise-out').value = Number($('noise').value).toFixed(2);
  schedule(THROTTLE);
});
$('seed').addEventListener('input', () => schedule(THROTTLE));
$('token').addEventListener('input', () => {
  clearTimeout(tokenTimer);
  tokenTimer = setTimeout(loadModels, 400);
});

function useFile(file) {
  if (!file) return;
  source = { file };
  pad.showImage(file);
  schedule(0);
}
$('file').addEventListener('change', (e) => useFile(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('dragging');
});
drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('dragging');
  useFile(e.dataTransfer.files[0]);
});

$('noise-out').value = Number($('noise').value).toFixed(2);
loadModels();

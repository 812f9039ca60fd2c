// From your digit to another: a variational autoencoder encodes both and
// decodes k codes evenly spaced on the line between their means, the two
// ends included (POST /v1/interpolate, two images in one multipart body,
// one PNG each back as JSON). The other end is one of the page's example
// digits, drawn with the pad's brush and fitted by the server as the
// drawing is (fit=true&include=input), so both go as 28×28 images.

import { EXAMPLES, examplePNG } from './examples.js';
import { b64PNG, formatMs } from './pixels.js';
import { digitList, el, modelOptions, pickModel, Tile } from './ui.js';

const interpolators = (app) => app.models.filter((m) => m.operations.includes('interpolate'));

const DEFAULT_TARGET = 0; // the digit the line goes to at first

export default {
  id: 'interpolate',
  title: 'From your digit to another (interpolation)',
  applies: (app) => interpolators(app).length > 0,

  mount(body, app) {
    const model = el('select', { id: 'interp-model' });
    const to = el('select', { id: 'interp-to' },
      ...EXAMPLES.map((x, i) => el('option', { value: String(i), text: `Example ${x.digit}` })));
    to.value = String(EXAMPLES.findIndex((x) => x.digit === DEFAULT_TARGET));
    const k = el('input', { type: 'number', id: 'interp-k', min: 2, max: 64, step: 1, value: 8, inputmode: 'numeric' });
    const field = (input, label) => el('div', { class: 'field' }, el('label', { for: input.id, text: label }), input);
    const from = new Tile('From: your digit', { alt: 'Your digit as the model sees it (28×28): the start of the line' });
    const target = new Tile('To: the example', { alt: 'The example digit as the model sees it (28×28): the end of the line' });
    from.root.id = 'interp-from';
    target.root.id = 'interp-target';
    const hint = el('p', { class: 'hint', id: 'interp-hint', text: 'Draw a digit, or press Example digit: the line starts from it.' });
    const summary = el('p', { class: 'result', id: 'interp-summary' }); // no live region: it changes as you draw
    const digits = el('ol', { class: 'digits', id: 'interp-digits', 'aria-label': 'The digits between yours and the example' });
    const timing = el('p', { class: 'timing', id: 'interp-timing' });
    body.append(
      el('p', { class: 'note', text: 'The model encodes both digits and decodes as many codes as asked for, evenly spaced on the line between their means, both ends included. Yours goes as the model sees it, without the noise.' }),
      el('div', { class: 'controls' }, field(model, 'Model'), field(to, 'To the digit'), field(k, 'How many (2–64)')),
      hint, el('div', { class: 'ends' }, from.root, target.root), summary, digits, timing);

    // The example digits as the model sees them, once each.
    const fitted = new Map();
    const targetPNG = (i, m) => {
      if (!fitted.has(i)) {
        const p = examplePNG(i)
          .then((png) => app.api.post('/v1/encode', png, { model: m, fit: 'true', include: 'input' }, 'application/json'))
          .then((a) => b64PNG(a.json().inputs[0]));
        p.catch(() => fitted.delete(i)); // asked again next time
        fitted.set(i, p);
      }
      return fitted.get(i);
    };

    let chosen = null; // the model the person picked here
    let last = null; // the last input's ctx
    let seq = 0;
    const clear = () => {
      for (const t of [from, target]) t.clear();
      digits.replaceChildren();
      summary.textContent = '';
      timing.textContent = '';
    };
    const run = async (ctx) => {
      const m = interpolators(app).find((x) => x.name === model.value);
      if (!m) return;
      const mine = ++seq;
      const fresh = () => mine === seq && ctx.current();
      const i = Number(to.value);
      const digit = EXAMPLES[i].digit;
      const q = { model: m.name };
      if (k.value.trim() !== '') q.k = k.value.trim();
      try {
        const end = await targetPNG(i, m.name);
        if (!fresh()) return;
        const a = await app.api.postImages('/v1/interpolate', [ctx.input.png, end], q, 'application/json');
        if (!fresh()) return;
        const r = a.json();
        hint.hidden = true;
        from.show(ctx.input.png, null);
        target.label.textContent = `To: the example ${digit}`;
        target.show(end, null);
        summary.textContent = `${r.images.length} digits from yours to the example ${digit}, by ${r.model}.`;
        digitList(digits, r.images, (j, n) =>
          `Step ${j + 1} of ${n}${j === 0 ? ': from your digit' : j === n - 1 ? `: to the example ${digit}` : ''}`);
        timing.textContent = `${a.call} · ${formatMs(a.ms)}`;
      } catch (err) {
        if (fresh()) clear();
        throw err;
      }
    };
    model.addEventListener('change', () => {
      chosen = model.value;
      if (last) app.track(run(last));
    });
    for (const c of [to, k]) c.addEventListener('change', () => last && app.track(run(last)));

    return {
      update(ctx) {
        last = ctx;
        return run(ctx);
      },
      modelsChanged() {
        const list = interpolators(app);
        modelOptions(model, list, pickModel(list, chosen, app));
      },
      clear() {
        last = null;
        seq++;
        clear();
        hint.hidden = false;
      },
    };
  },
};

// New digits nobody drew: a variational autoencoder decodes codes drawn
// from its prior N(0, I) (POST /v1/sample, one PNG each as JSON). The same
// seed gives the same digits; without one the server picks it and says
// which in X-Seed. This view needs no drawing: it runs on its button.

import { digitList, el, modelOptions, pickModel } from './ui.js';
import { formatMs } from './pixels.js';

const samplers = (app) => app.models.filter((m) => m.operations.includes('sample'));

export default {
  id: 'sample',
  title: 'New digits (sampling a variational autoencoder)',
  applies: (app) => samplers(app).length > 0,

  mount(body, app) {
    const model = el('select', { id: 'sample-model' });
    const n = el('input', { type: 'number', id: 'sample-n', min: 1, max: 64, step: 1, value: 8, inputmode: 'numeric' });
    const seed = el('input', {
      type: 'text', id: 'sample-seed', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false',
      'aria-describedby': 'sample-seed-note',
    });
    const draw = el('button', { type: 'button', id: 'sample-draw', text: 'Draw new digits' });
    const field = (input, label, ...more) => el('div', { class: 'field' }, el('label', { for: input.id, text: label }), input, ...more);
    body.append(
      el('p', { class: 'note', text: 'The model decodes codes drawn at random from its prior, N(0, I): digits nobody drew. The same seed draws the same digits.' }),
      el('div', { class: 'controls' },
        field(model, 'Model'),
        field(n, 'How many (1–64)'),
        field(seed, 'Seed (optional)', el('p', { class: 'note', id: 'sample-seed-note', text: 'Empty: the server picks one.' }))),
      draw);
    const summary = el('p', { class: 'result', id: 'sample-summary', role: 'status' });
    const seedUsed = el('strong', { id: 'sample-seed-used' });
    const keep = el('button', { type: 'button', id: 'sample-keep', class: 'small', text: 'Keep this seed' });
    keep.hidden = true;
    const digits = el('ol', { class: 'digits', id: 'sample-digits', 'aria-label': 'New digits' });
    const timing = el('p', { class: 'timing', id: 'sample-timing' });
    body.append(el('div', { class: 'result-line' }, summary, keep), digits, timing);

    let chosen = null; // the model the person picked here
    let seq = 0;
    const clear = () => {
      summary.textContent = '';
      seedUsed.textContent = '';
      keep.hidden = true;
      digits.replaceChildren();
      timing.textContent = '';
    };
    model.addEventListener('change', () => { chosen = model.value; });
    const run = async () => {
      const m = samplers(app).find((x) => x.name === model.value);
      if (!m) return;
      const q = { model: m.name };
      if (n.value.trim() !== '') q.n = n.value.trim();
      if (seed.value.trim() !== '') q.seed = seed.value.trim();
      const mine = ++seq;
      let a;
      try {
        a = await app.api.sample(q);
      } catch (err) {
        if (mine === seq) clear(); // what is shown is not what was asked for
        throw err;
      }
      if (mine !== seq) return; // a later draw answers
      const r = a.json();
      const s = a.header('X-Seed') ?? '';
      seedUsed.textContent = s;
      const many = r.images.length === 1 ? '1 digit' : `${r.images.length} digits`;
      summary.replaceChildren(`${many} from ${r.model}, drawn with seed `, seedUsed, q.seed ? '' : ' (the server picked it)', '.');
      keep.hidden = !s || seed.value.trim() === s;
      digitList(digits, r.images, (i, k) => `New digit ${i + 1} of ${k} from ${r.model}, seed ${s}`);
      timing.textContent = `${a.call} · ${formatMs(a.ms)}`;
    };
    draw.addEventListener('click', () => app.track(run()));
    for (const input of [n, seed]) {
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          app.track(run());
        }
      });
    }
    keep.addEventListener('click', () => {
      seed.value = seedUsed.textContent;
      keep.hidden = true;
      seed.focus();
    });

    return {
      modelsChanged() {
        const list = samplers(app);
        modelOptions(model, list, pickModel(list, chosen, app));
      },
    };
  },
};

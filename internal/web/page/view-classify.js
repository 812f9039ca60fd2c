// The classifier's probabilities for the (noisy) input as a bar chart,
// optionally after a denoising autoencoder (POST /v1/classify?denoise=true).

import { el } from './ui.js';
import { formatMs } from './pixels.js';

const classifiers = (app) => app.models.filter((m) => m.operations.includes('classify'));

// denoiser is the autoencoder trained on noise that denoise=true runs: the
// server's default, denoise, if it is served.
const denoiser = (app) => {
  const ok = app.models.filter((m) => m.trained_on_noise && m.operations.includes('denoise'));
  return ok.find((m) => m.name === 'denoise') || ok[0];
};

export default {
  id: 'classify',
  title: 'Which digit is it? (classifier)',
  applies: (app) => classifiers(app).length > 0,

  mount(body, app) {
    const denoise = el('input', { type: 'checkbox', id: 'classify-denoise' });
    const denoiseLabel = el('label', { for: 'classify-denoise' }, denoise, ' Denoise first (denoise=true)');
    const answer = el('p', { class: 'answer', id: 'classify-answer' });
    const bars = el('ol', { class: 'bars', start: 0, 'aria-label': 'Probability of each digit' });
    const timing = el('p', { class: 'timing' });
    body.append(denoiseLabel, answer, bars, timing);
    let last = null;
    const run = async (ctx) => {
      const m = classifiers(app).find((c) => c.name === 'classifier') || classifiers(app)[0];
      const q = { model: m.name };
      const dn = denoiser(app);
      if (denoise.checked && dn) {
        q.denoise = 'true';
        if (dn.name !== 'denoise') q.denoiser = dn.name;
      }
      const a = await ctx.api.post('/v1/classify', ctx.noisy.png, q, 'application/json');
      if (!ctx.current()) return;
      const r = a.json();
      const by = a.header('X-Denoiser');
      answer.textContent = `${m.name} reads a ${r.digit} (p = ${r.probabilities[r.digit].toFixed(3)})${by ? `, after the ${by} model cleaned it` : ''}.`;
      bars.replaceChildren(...r.probabilities.map((p, d) => {
        const bar = el('span', { class: 'bar', 'aria-hidden': 'true' });
        bar.style.width = `${(100 * p).toFixed(1)}%`;
        return el('li', { class: d === r.digit ? 'best' : '' },
          el('span', { class: 'digit-label', text: String(d) }),
          el('span', { class: 'bar-track' }, bar),
          el('span', { class: 'pct', text: `${(100 * p).toFixed(1)}%` }));
      }));
      timing.textContent = `${a.call} · ${formatMs(a.ms)}`;
    };
    denoise.addEventListener('change', () => last && last.current() && app.track(run(last)));
    return {
      update(ctx) {
        last = ctx;
        return run(ctx);
      },
      modelsChanged() {
        denoiseLabel.hidden = !denoiser(app);
      },
      clear() {
        last = null;
        answer.textContent = '';
        bars.replaceChildren();
        timing.textContent = '';
      },
    };
  },
};

// The anomaly score: the reconstruction error of this input (X-Score-MSE
// and X-Score-BCE of /v1/reconstruct), placed among the model's scores on
// the 10,000 clean test digits (metrics.scores of GET /v1/models). Above
// p99, fewer than 1 test digit in 100 scores as high: the model finds this
// input unlike its training digits.

import { el } from './ui.js';
import { formatMs } from './pixels.js';

const MARKS = ['p50', 'p90', 'p95', 'p99', 'p99.9'];

export default {
  id: 'score',
  title: 'How unusual is it? (anomaly score)',
  applies: (app) => !!app.model && app.model.operations.includes('score') && !!app.model.metrics?.scores,

  mount(body) {
    const intro = el('p', { class: 'note' });
    const scales = el('div', { class: 'scores' });
    const timing = el('p', { class: 'timing' });
    body.append(intro, scales, timing);
    return {
      async update(ctx) {
        const dist = ctx.model.metrics.scores;
        const a = await ctx.reconstruct();
        if (!ctx.current()) return;
        intro.textContent = `Reconstruction error of this input, among ${ctx.model.name}'s on ${dist.images.toLocaleString('en-US')} clean test digits.`;
        scales.replaceChildren(
          scale('MSE', Number(a.header('X-Score-MSE')), dist.mse),
          scale('BCE', Number(a.header('X-Score-BCE')), dist.bce));
        timing.textContent = `${a.call} · ${formatMs(a.ms)} (the scores come in its X-Score-MSE and X-Score-BCE headers)`;
      },
      clear() {
        intro.textContent = '';
        scales.replaceChildren();
        timing.textContent = '';
      },
    };
  },
};

// scale is one score on a logarithmic axis with the percentiles marked,
// and a sentence saying where it falls.
function scale(name, v, p) {
  const marks = MARKS.filter((k) => p[k] > 0);
  let above = null;
  for (const k of marks) if (v > p[k]) above = k;
  const lo = Math.min(p.p50 / 4, v);
  const hi = Math.max(p.max, v) * 1.2;
  const x = (s) => (100 * Math.log(Math.max(s, lo) / lo)) / Math.log(hi / lo);
  const axis = el('div', { class: 'axis', 'aria-hidden': 'true' });
  // Labels take two rows, and one too close to the last of its row is left
  // out (its tick stays): close percentiles would write over each other.
  const lastAt = [-100, -100];
  const gap = Math.max(5, 3600 / Math.max(320, window.innerWidth)); // % of the axis a label takes
  for (const [i, k] of marks.entries()) {
    const at = x(p[k]);
    const row = i % 2;
    const room = at - lastAt[row] >= gap;
    if (room) lastAt[row] = at;
    const t = el('span', { class: `tick${row ? ' low' : ''}`, text: room ? k : '' });
    t.style.left = `${at}%`;
    axis.append(t);
  }
  const dot = el('span', { class: `marker${above === 'p99' || above === 'p99.9' ? ' high' : ''}` });
  dot.style.left = `${x(v)}%`;
  axis.append(dot);
  let where;
  if (!above) where = `at or below the median (p50 ${fmt(p.p50)}): typical of the test digits`;
  else {
    const pct = above.slice(1);
    const next = marks[marks.indexOf(above) + 1];
    where = `above ${pct}% of the test digits (${above} ${fmt(p[above])}${next ? `; ${next} ${fmt(p[next])}` : ''})`;
    if (above === 'p99' || above === 'p99.9') where += ': unusual for this model';
  }
  return el('div', { class: 'score' },
    el('p', {}, el('strong', { text: `${name} ${fmt(v)}` }), ` ${where}`), axis);
}

const fmt = (v) => (v < 0.001 ? v.toExponential(2) : v.toPrecision(3));

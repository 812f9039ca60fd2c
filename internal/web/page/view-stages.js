// Input, noisy input, latent and output side by side: what the model is
// given, what the encoder keeps of it and what the decoder makes of that.

import { el, Tile } from './ui.js';
import { heat, parseLatent } from './pixels.js';

const has = (m, op) => !!m && m.operations.includes(op);

export default {
  id: 'stages',
  title: 'What the autoencoder does',
  applies: (app) => has(app.model, 'encode') || has(app.model, 'reconstruct'),

  mount(body, app) {
    const input = new Tile('Input as the model sees it (28×28)', { alt: 'The input, 28×28, after fit' });
    const noisy = new Tile('Noisy input', { alt: 'The input with noise added, as sent to the model' });
    const latent = new LatentTile();
    const output = new Tile('Output', { alt: "The model's reconstruction of the noisy input" });
    input.root.id = 'tile-input';
    noisy.root.id = 'tile-noisy';
    output.root.id = 'tile-output';
    body.append(el('div', { class: 'tiles' }, input.root, noisy.root, latent.root, output.root));
    const note = el('p', { class: 'note', id: 'stages-note' });
    body.append(note);

    return {
      async update(ctx) {
        input.show(ctx.input.png, ctx.input.answer);
        noisy.label.textContent = ctx.noisy.level > 0 ? `Noisy input (noise ${ctx.noisy.level.toFixed(2)}, seed ${ctx.noisy.seed})` : 'Noisy input (no noise)';
        noisy.show(ctx.noisy.png, { call: 'in the page', ms: ctx.noisy.ms });
        const jobs = [];
        if (has(ctx.model, 'encode')) {
          jobs.push(ctx.encode().then((a) => ctx.current() && latent.show(parseLatent(a.body), a)));
        } else latent.clear();
        if (has(ctx.model, 'reconstruct')) {
          jobs.push(ctx.reconstruct().then((a) => {
            if (!ctx.current()) return;
            output.show(a.blob('image/png'), a);
            const warn = a.header('X-Input-Warning');
            note.textContent = warn ? `Server warning: ${warn}` : '';
          }));
        } else output.clear();
        await Promise.all(jobs);
      },
      clear() {
        for (const t of [input, noisy, latent, output]) t.clear();
        note.textContent = '';
      },
    };
  },
};

// LatentTile draws a latent (parseLatent's: the numbers it stands for, an
// int8 one's data times its scale) as a heat map in the model's latent shape:
// [C, H, W] as C maps of H×W (conv: 32 maps of 7×7), a vector as a strip
// of cells, wrapped into rows of 16 past 32 numbers.
class LatentTile extends Tile {
  constructor() {
    super('Latent');
    this.root.id = 'tile-latent';
    this.canvas = el('canvas', { class: 'heat', width: 1, height: 1, role: 'img', 'aria-label': 'Latent heat map' });
    this.canvas.hidden = true;
    this.slot.replaceChildren(this.canvas);
    this.range = el('span', { class: 'heat-range' });
    this.root.querySelector('figcaption').append(this.range);
  }

  show(l, answer) {
    const dims = l.shape.slice(1); // [1, …latent shape]
    const n = dims.reduce((a, x) => a * x, 1);
    // A grid of maps, or one map of a vector's numbers as tall cells.
    let maps = 1;
    let h = 1;
    let w = n;
    if (dims.length === 3) [maps, h, w] = dims;
    else if (n > 32) [h, w] = [Math.ceil(n / 32), 32];
    const cols = maps > 1 ? Math.ceil(Math.sqrt(maps * 2)) : 1; // 32 maps: 8 × 4
    const rows = Math.ceil(maps / cols);
    const cw = Math.max(2, Math.floor(168 / (cols * (w + 1)))); // a cell's width, and its height in a map
    const ch = maps > 1 ? cw : Math.max(cw, Math.floor(120 / h)); // a vector's cells are bars
    const c = this.canvas;
    c.width = cols * (w + 1) * cw - cw;
    c.height = rows * (h * ch + cw) - cw;
    const g = c.getContext('2d');
    g.clearRect(0, 0, c.width, c.height);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of l.values) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span = hi > lo ? hi - lo : 1;
    const per = h * w;
    const gap = maps > 1 ? 0 : 1; // a vector's cells apart, a map's together
    for (let m = 0; m < maps; m++) {
      const ox = (m % cols) * (w + 1) * cw;
      const oy = Math.floor(m / cols) * (h * ch + cw);
      for (let i = 0; i < per && m * per + i < l.values.length; i++) {
        const [r, gg, b] = heat((l.values[m * per + i] - lo) / span);
        g.fillStyle = `rgb(${r},${gg},${b})`;
        g.fillRect(ox + (i % w) * cw, oy + Math.floor(i / w) * ch, cw - gap, ch - gap);
      }
    }
    const shape = dims.length === 3 ? `${maps} maps of ${h}×${w}` : dims.length === 1 ? `${n} numbers` : dims.join("×");
    this.label.textContent = `Latent (${shape}, ${l.dtype})`;
    this.range.textContent = `${lo.toFixed(2)} (dark) to ${hi.toFixed(2)} (yellow)`;
    c.setAttribute('aria-label', `Latent heat map: ${shape}, ${l.dtype}, values from ${lo.toFixed(2)} to ${hi.toFixed(2)}`);
    c.hidden = false;
    this.time(answer);
  }

  clear() {
    this.canvas.hidden = true;
    this.range.textContent = '';
    this.label.textContent = 'Latent';
    this.time(null);
  }
}



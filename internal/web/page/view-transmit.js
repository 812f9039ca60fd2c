// Sender and receiver on one screen: the sender encodes the (noisy) input
// to the binary latent, the only thing that would travel, and the receiver
// decodes those bytes back to a digit, as two processes of roles encoder
// and decoder would.
//
// The latent travels in the dtype chosen here among the model's
// quantizations (GET /v1/models): int8 where the model offers it (compact:
// 47 bytes a digit), else float32. The choice is app.quant, which every
// view's ctx.encode() asks for, so the latent heat map shows what travels.

import { el, Tile } from './ui.js';
import { formatBytes, formatMs, LEN, parseLatent } from './pixels.js';

const can = (m, ...ops) => !!m && ops.every((op) => m.operations.includes(op));
const applies = (app) => can(app.model, 'encode', 'decode');

// The dtypes the model's latents can be sent in, float32 first; a server
// that does not list them sends float32 only.
const quantizations = (m) => m?.quantizations?.length ? m.quantizations : [];

export default {
  id: 'transmit',
  title: 'Sender and receiver',
  applies,

  mount(body, app) {
    const quant = el('select', { id: 'quant', 'aria-describedby': 'quant-note' });
    const quantField = el('div', { class: 'field quant-field' },
      el('label', { for: 'quant', text: 'Send the latent as' }), quant,
      el('p', { class: 'note', id: 'quant-note', text: 'The dtypes /v1/encode?quant= offers for this model, each with the size of one digit\'s binary latent, header included. A number takes 4 bytes as float32, 2 as float16 and 1 as int8, whose latent also carries one binary16 scale (value = data·scale).' }));
    const chosen = new Map(); // model name → the dtype the person picked for it
    quant.addEventListener('change', () => {
      chosen.set(app.model.name, quant.value);
      app.quant = quant.value;
      app.rerun();
    });
    const sent = new Tile('Sender: the input it encodes', { alt: 'The image the sender encodes' });
    const receivedLabel = 'Receiver: decoded from the latent';
    const received = new Tile(receivedLabel, { alt: 'The digit the receiver decodes from the latent' });
    received.root.id = 'tile-received';
    const wire = el('dl', { class: 'wire' });
    const row = (term) => {
      const dd = el('dd');
      wire.append(el('dt', { text: term }), dd);
      return dd;
    };
    const latentBytes = row('Binary latent');
    const pngBytes = row('The same image as a PNG');
    const rawBytes = row('As raw pixels');
    const header = row('First bytes on the wire');
    const timings = row('Calls');
    body.append(quantField, el('div', { class: 'transmit' }, sent.root,
      el('div', { class: 'wire-box' }, el('p', { class: 'arrow', 'aria-hidden': 'true', text: '→' }), wire),
      received.root));

    return {
      async update(ctx) {
        sent.show(ctx.noisy.png, null);
        const enc = await ctx.encode();
        if (!ctx.current()) return;
        const l = parseLatent(enc.body);
        const n = enc.body.byteLength;
        const scale = l.scale === null ? '' : ` with the scale ${l.scale.toPrecision(3)}`;
        latentBytes.textContent = `${formatBytes(n)} (${l.shape.slice(1).join('×')} ${l.dtype}, ${l.headerBytes}-byte header${scale})`;
        const png = ctx.noisy.png.size;
        pngBytes.textContent = `${formatBytes(png)}: the latent is ${n < png ? `${(png / n).toFixed(1)}× smaller` : `${(n / png).toFixed(1)}× larger`}`;
        rawBytes.textContent = formatBytes(LEN);
        header.textContent = Array.from(new Uint8Array(enc.body, 0, Math.min(16, n)), (x) => x.toString(16).padStart(2, '0')).join(' ');
        const dec = await ctx.api.decode(enc.body);
        if (!ctx.current()) return;
        received.label.textContent = `Receiver: decoded from the ${l.dtype} latent`;
        received.show(dec.blob('image/png'), dec);
        timings.textContent = `encode ${formatMs(enc.ms)}, decode ${formatMs(dec.ms)}`;
      },
      // modelsChanged lists the model's dtypes, picks the one the person
      // chose for it, else int8 if it offers it, else float32, and sets
      // app.quant (null where this view does not apply: float32).
      modelsChanged() {
        const qs = applies(app) ? quantizations(app.model) : [];
        quant.replaceChildren(...qs.map((q) => el('option', { value: q.dtype, text: `${q.dtype}: ${formatBytes(q.binary_bytes)}` })));
        quantField.hidden = qs.length === 0;
        const has = (d) => qs.some((q) => q.dtype === d);
        const pick = [chosen.get(app.model?.name), 'int8', 'float32'].find((d) => d && has(d)) || qs[0]?.dtype;
        if (pick) quant.value = pick;
        app.quant = pick && pick !== 'float32' ? pick : null;
      },
      clear() {
        sent.clear();
        received.clear();
        received.label.textContent = receivedLabel;
        for (const dd of wire.querySelectorAll('dd')) dd.textContent = '';
      },
    };
  },
};

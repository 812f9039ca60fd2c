// Sender and receiver on one screen: the sender encodes the (noisy) input
// to the binary latent, the only thing that would travel, and the receiver
// decodes those bytes back to a digit, as two processes of roles encoder
// and decoder would.

import { el, Tile } from './ui.js';
import { formatBytes, formatMs, LEN, parseLatent } from './pixels.js';

const can = (m, ...ops) => !!m && ops.every((op) => m.operations.includes(op));

export default {
  id: 'transmit',
  title: 'Sender and receiver',
  applies: (app) => can(app.model, 'encode', 'decode'),

  mount(body) {
    const sent = new Tile('Sender: the input it encodes', { alt: 'The image the sender encodes' });
    const received = new Tile('Receiver: decoded from the latent', { alt: 'The digit the receiver decodes from the latent' });
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
    body.append(el('div', { class: 'transmit' }, sent.root,
      el('div', { class: 'wire-box' }, el('p', { class: 'arrow', 'aria-hidden': 'true', text: '→' }), wire),
      received.root));

    return {
      async update(ctx) {
        sent.show(ctx.noisy.png, null);
        const enc = await ctx.encode();
        if (!ctx.current()) return;
        const l = parseLatent(enc.body);
        const n = enc.body.byteLength;
        latentBytes.textContent = `${formatBytes(n)} (${l.shape.slice(1).join('×')} ${l.dtype}, ${l.headerBytes}-byte header)`;
        const png = ctx.noisy.png.size;
        pngBytes.textContent = `${formatBytes(png)}: the latent is ${n < png ? `${(png / n).toFixed(1)}× smaller` : `${(n / png).toFixed(1)}× larger`}`;
        rawBytes.textContent = formatBytes(LEN);
        header.textContent = Array.from(new Uint8Array(enc.body, 0, Math.min(16, n)), (x) => x.toString(16).padStart(2, '0')).join(' ');
        const dec = await ctx.api.decode(enc.body);
        if (!ctx.current()) return;
        received.show(dec.blob('image/png'), dec);
        timings.textContent = `encode ${formatMs(enc.ms)}, decode ${formatMs(dec.ms)}`;
      },
      clear() {
        sent.clear();
        received.clear();
        for (const dd of wire.querySelectorAll('dd')) dd.textContent = '';
      },
    };
  },
};

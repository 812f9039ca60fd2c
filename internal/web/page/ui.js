// Small DOM helpers the views share.

import { formatMs } from './pixels.js';

// el makes an element: el('p', {class: 'x', text: 'hi'}, child, …).
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

// Tile is one picture of a view with its caption: what it is, and which
// call made it in how long.
export class Tile {
  constructor(label, { alt } = {}) {
    this.img = el('img', { alt: alt || label, width: 28, height: 28, class: 'digit' });
    this.img.hidden = true;
    this.slot = el('div', { class: 'tile-picture' }, this.img);
    this.label = el('span', { class: 'tile-label', text: label });
    this.timing = el('span', { class: 'timing' });
    this.root = el('figure', { class: 'tile' }, this.slot, el('figcaption', {}, this.label, this.timing));
    this.url = null;
  }

  // show puts a PNG (Blob) in the tile.
  show(blob, timing) {
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = URL.createObjectURL(blob);
    this.img.src = this.url;
    this.img.hidden = false;
    this.time(timing);
  }

  // time says which call made the picture, in how long: a call's Answer,
  // or {ms, call}.
  time(t) {
    this.timing.textContent = t ? `${t.call} · ${formatMs(t.ms)}` : '';
  }

  clear() {
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
    this.img.removeAttribute('src');
    this.img.hidden = true;
    this.time(null);
  }
}

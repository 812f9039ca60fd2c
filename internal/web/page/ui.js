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

// pickModel is the model a view of a generative operation calls: the one
// the person chose in it while it is served, else the page's model if it
// can, else the server's default (vae), else the first that can.
export function pickModel(list, chosen, app) {
  return list.find((m) => m.name === chosen) ||
    list.find((m) => m.name === app.model?.name) ||
    list.find((m) => m.name === 'vae') || list[0] || null;
}

// modelOptions fills a select with the models of list, picking pick.
export function modelOptions(select, list, pick) {
  const size = (m) => m.latent_shape?.reduce((a, x) => a * x, 1);
  select.replaceChildren(...list.map((m) => el('option', { value: m.name, text: size(m) ? `${m.name} (${size(m)}-number code)` : m.name })));
  if (pick) select.value = pick.name;
}

// digitList shows PNGs (base64, from JSON) as a list of images.
export function digitList(list, images, alt) {
  list.replaceChildren(...images.map((b64, i) =>
    el('li', {}, el('img', { class: 'digit', src: `data:image/png;base64,${b64}`, width: 28, height: 28, alt: alt(i, images.length) }))));
}

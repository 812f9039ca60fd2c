// The drawing pad: a black canvas drawn on in white with mouse, pen or
// touch (pointer events), with a soft round brush whose width and blurred
// edge, once the server has fitted the drawing into 20×20 of 28×28 as
// MNIST did, match MNIST's anti-aliased strokes of two to three pixels.

const BRUSH = 22; // px of the 280-px pad: ~2.2 px of a 28-px digit after fit
const SOFT = 7; // blur of the edge, px

export class Pad {
  // onChange(final) is called as the drawing changes: final is false
  // while a stroke goes on, true when it ends.
  constructor(canvas, onChange) {
    this.c = canvas;
    this.g = canvas.getContext('2d');
    this.onChange = onChange;
    this.last = null;
    this.empty = true;
    this.clear(false);
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const t of ['pointerup', 'pointercancel']) canvas.addEventListener(t, (e) => this.up(e));
  }

  clear(notify = true) {
    const g = this.g;
    g.save();
    g.shadowBlur = 0;
    g.fillStyle = '#000';
    g.fillRect(0, 0, this.c.width, this.c.height);
    g.restore();
    this.empty = true;
    if (notify) this.onChange(true);
  }

  point(e) {
    const r = this.c.getBoundingClientRect();
    const pressure = e.pointerType === 'pen' && e.pressure > 0 ? e.pressure : 0.5;
    return { x: ((e.clientX - r.left) * this.c.width) / r.width, y: ((e.clientY - r.top) * this.c.height) / r.height, p: pressure };
  }

  down(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    this.c.setPointerCapture(e.pointerId);
    this.last = this.point(e);
    this.segment(this.last, this.last);
  }

  move(e) {
    if (!this.last) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ce of events.length ? events : [e]) {
      const p = this.point(ce);
      this.segment(this.last, p);
      this.last = p;
    }
    this.onChange(false);
  }

  up(e) {
    if (!this.last) return;
    this.last = null;
    if (this.c.hasPointerCapture(e.pointerId)) this.c.releasePointerCapture(e.pointerId);
    this.onChange(true);
  }

  // segment strokes from a to b; a pen's pressure varies the width
  // (a mouse and a finger draw at the middle width).
  segment(a, b) {
    const g = this.g;
    g.save();
    g.strokeStyle = '#fff';
    g.lineCap = 'round';
    g.lineJoin = 'round';
    g.lineWidth = BRUSH * (0.5 + b.p);
    g.shadowColor = '#fff';
    g.shadowBlur = SOFT;
    g.beginPath();
    g.moveTo(a.x, a.y);
    g.lineTo(b.x + (a === b ? 0.01 : 0), b.y);
    g.stroke();
    g.restore();
    this.empty = false;
  }

  // stroke draws a polyline of [x, y] points in 0..1 of the pad, as if
  // drawn: the example digit, for keyboards and tests.
  stroke(points) {
    const w = this.c.width;
    const h = this.c.height;
    let a = null;
    for (const [x, y] of points) {
      const b = { x: x * w, y: y * h, p: 0.5 };
      this.segment(a || b, b);
      a = b;
    }
    this.onChange(true);
  }

  // showImage draws a picked or dropped image on the pad, fitted inside
  // it, so that the pad shows what is being sent.
  async showImage(blob) {
    this.clear(false);
    try {
      const bmp = await createImageBitmap(blob);
      const s = Math.min(this.c.width / bmp.width, this.c.height / bmp.height);
      const w = bmp.width * s;
      const h = bmp.height * s;
      this.g.drawImage(bmp, (this.c.width - w) / 2, (this.c.height - h) / 2, w, h);
      bmp.close();
      this.empty = false;
    } catch {
      // Not an image the browser reads: the server will say what it is.
    }
  }

  // png is the pad as a PNG, 280×280.
  png() {
    return new Promise((resolve) => this.c.toBlob(resolve, 'image/png'));
  }
}

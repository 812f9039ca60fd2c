// Example digits, as strokes ([x, y] in 0..1 of the drawing pad): the pad's
// "Example digit" button draws them (for a keyboard, and to see the page
// work at once), and the interpolation view goes to one of them.

import { Pad } from './pad.js';

// ellipse is a closed stroke round (cx, cy).
const ellipse = (cx, cy, rx, ry, n = 20) =>
  Array.from({ length: n + 1 }, (_, i) => [cx + rx * Math.sin((2 * Math.PI * i) / n), cy - ry * Math.cos((2 * Math.PI * i) / n)]);

export const EXAMPLES = [
  { digit: 7, strokes: [[[0.3, 0.25], [0.7, 0.25], [0.6, 0.45], [0.5, 0.62], [0.45, 0.78]]] },
  { digit: 2, strokes: [[[0.32, 0.33], [0.42, 0.24], [0.58, 0.24], [0.66, 0.34], [0.6, 0.5], [0.33, 0.76], [0.7, 0.76]]] },
  { digit: 1, strokes: [[[0.5, 0.22], [0.52, 0.78]]] },
  { digit: 4, strokes: [[[0.6, 0.76], [0.6, 0.22], [0.33, 0.58], [0.72, 0.58]]] },
  { digit: 0, strokes: [ellipse(0.5, 0.5, 0.19, 0.28)] },
  { digit: 3, strokes: [[[0.33, 0.3], [0.44, 0.23], [0.58, 0.23], [0.65, 0.32], [0.6, 0.43], [0.47, 0.48], [0.62, 0.53], [0.67, 0.64], [0.6, 0.75], [0.45, 0.78], [0.32, 0.72]]] },
];

// drawExample draws example i on a pad.
export function drawExample(pad, i) {
  for (const s of EXAMPLES[i].strokes) pad.stroke(s);
}

// examplePNG is example i drawn as the pad draws it (same brush, 280×280),
// as a PNG: what the page sends when a person draws it.
export function examplePNG(i) {
  const c = document.createElement('canvas');
  c.width = 280;
  c.height = 280;
  const pad = new Pad(c, () => {});
  drawExample(pad, i);
  return pad.png();
}

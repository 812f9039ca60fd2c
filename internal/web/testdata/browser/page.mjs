// The browser half of internal/web's TestPageInBrowser: drives the page and
// /docs in headless Chromium (Debian's, through playwright-core) against a
// real server the Go test started, and prints what it saw as JSON on
// stdout, for the Go test to check against the server. Progress goes to
// stderr.
//
// Environment: BASE_URL (the server), CHROMIUM (the browser's path), TOKEN
// (the server's bearer token), SHOTS (where to write the screenshots).
//
// Each case is a function of the list at the bottom; a new view of the
// page adds its case there (and its check in browser_test.go if the Go
// side must check something against the server).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const { BASE_URL, CHROMIUM, TOKEN, SHOTS } = process.env;
const log = (...a) => console.error('[page.mjs]', ...a);
const axeSource = await readFile(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const out = {
  external: [], // requests to anywhere but the server
  csp: [], // Content-Security-Policy violations
  pageErrors: [], // uncaught exceptions
  cases: {},
};

// main runs the cases in order, in one page.
async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const context = await browser.newContext({ viewport: DESKTOP, deviceScaleFactor: 1 });
    context.setDefaultTimeout(60_000);
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    const page = await context.newPage();
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(`${BASE_URL}/`) && !u.startsWith('data:') && !u.startsWith('blob:')) out.external.push(u);
    });
    page.on('console', (m) => {
      if (m.text().startsWith('CSP violation') || m.text().includes('Content Security Policy')) out.csp.push(m.text());
    });
    page.on('pageerror', (e) => out.pageErrors.push(String(e)));

    for (const [name, fn] of cases) {
      log('case', name);
      out.cases[name] = await fn(page);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
}


// settled waits until the page has run everything it scheduled.
async function settled(page) {
  await page.evaluate(() => window.aeserve.settled());
}

// problems records the problem answers the page gets from now on.
function problems(page) {
  const got = [];
  const on = async (res) => {
    if (res.status() >= 400 && (res.headers()['content-type'] || '').startsWith('application/problem+json')) {
      try { got.push({ url: res.url(), ...(await res.json()) }); } catch { /* page gone */ }
    }
  };
  page.on('response', on);
  return { got, stop: () => page.off('response', on) };
}

async function alertText(page) {
  const box = page.locator('#error');
  return (await box.isVisible()) ? (await box.innerText()).trim() : '';
}

// drawSeven draws a 7 on the pad with the mouse, in steps, as a person would.
async function drawSeven(page) {
  const b = await page.locator('#pad').boundingBox();
  const at = (x, y) => [b.x + x * b.width, b.y + y * b.height];
  await page.mouse.move(...at(0.28, 0.25));
  await page.mouse.down();
  for (const [x, y] of [[0.72, 0.25], [0.6, 0.45], [0.52, 0.62], [0.46, 0.8]]) {
    await page.mouse.move(...at(x, y), { steps: 8 });
  }
  await page.mouse.up();
}

async function setRange(page, sel, value) {
  await page.locator(sel).evaluate((e, v) => {
    e.value = v;
    e.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(value));
}

// imgPixels are the grey levels an <img> of the page shows, read back
// through a canvas at its natural size (28×28).
async function imgPixels(page, sel) {
  return page.locator(sel).evaluate((img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const px = [];
    for (let i = 0; i < d.length; i += 4) px.push(d[i]);
    return { width: c.width, height: c.height, px };
  });
}

// lastB64 is a PNG of the page's last run (window.aeserve.last), as base64.
async function lastB64(page, key) {
  return page.evaluate(async (k) => {
    const b = new Uint8Array(await window.aeserve.last[k].arrayBuffer());
    let s = '';
    for (const x of b) s += String.fromCharCode(x);
    return btoa(s);
  }, key);
}

// quantChoice is the sender and receiver view's dtype control: its
// options and the selected one.
async function quantChoice(page) {
  const sel = page.getByLabel('Send the latent as');
  return { value: await sel.inputValue(), options: await sel.locator('option').evaluateAll((os) => os.map((o) => o.value)) };
}

// digitsShown are the images of a list of digits the page shows (the
// generative views'), each read back as imgPixels does, with its alt text.
async function digitsShown(page, sel) {
  return page.locator(`${sel} img`).evaluateAll((imgs) => imgs.map((img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const px = [];
    for (let i = 0; i < d.length; i += 4) px.push(d[i]);
    return { width: c.width, height: c.height, px, alt: img.alt };
  }));
}

// calls records the page's POSTs to a route from now on, with their
// answers' status and X-Seed.
function calls(page, route) {
  const got = [];
  const on = async (res) => {
    const r = res.request();
    if (r.method() !== 'POST' || new URL(r.url()).pathname !== route) return;
    const h = r.headers();
    got.push({
      url: r.url(), type: h['content-type'] || '', accept: h.accept || '', body: r.postDataBuffer()?.toString('base64') || '',
      status: res.status(), seed: res.headers()['x-seed'] ?? null,
    });
  };
  page.on('response', on);
  return { got, stop: () => page.off('response', on) };
}

async function text(page, sel) {
  return (await page.locator(sel).innerText()).trim();
}

async function axe(page) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
}

const cases = [
  // Without the token the server answers 401, and the page says so with
  // the problem's title and detail; with it, the models load.
  ['token', async (page) => {
    const p = problems(page);
    await page.goto(`${BASE_URL}/`);
    await settled(page);
    const before = await alertText(page);
    p.stop();
    await page.fill('#token', TOKEN);
    await settled(page);
    const models = await page.locator('#model option').allTextContents();
    return { alert: before, problem: p.got[0] || null, models, alertAfter: await alertText(page) };
  }],

  // Draw a 7 with noise 0.3 and the conv model; what the page sent to
  // /v1/reconstruct and the output it shows go back to the Go test.
  ['draw', async (page) => {
    await page.selectOption('#model', 'conv');
    await setRange(page, '#noise', 0.3);
    await page.fill('#seed', '7');
    const sent = [];
    const encodes = [];
    const onReq = (r) => {
      if (r.method() !== 'POST') return;
      const p = new URL(r.url()).pathname;
      if (p === '/v1/reconstruct') {
        sent.push({ url: r.url(), type: r.headers()['content-type'], auth: r.headers().authorization || '', body: r.postDataBuffer()?.toString('base64') });
      } else if (p === '/v1/encode') encodes.push(r.url());
    };
    page.on('request', onReq);
    await drawSeven(page);
    await settled(page);
    page.off('request', onReq);
    const last = sent[sent.length - 1];
    const text = async (sel) => (await page.locator(sel).innerText()).trim();
    return {
      requests: sent.length,
      url: last?.url, type: last?.type, auth: last?.auth,
      sent: last?.body,
      noisyState: await lastB64(page, 'noisy'),
      inputState: await lastB64(page, 'input'),
      output: await imgPixels(page, '#tile-output img'),
      received: await imgPixels(page, '#tile-received img'),
      captions: {
        input: await text('#tile-input figcaption'),
        noisy: await text('#tile-noisy figcaption'),
        latent: await text('#tile-latent figcaption'),
        output: await text('#tile-output figcaption'),
      },
      latentVisible: await page.locator('#tile-latent canvas').isVisible(),
      transmit: await text('#view-transmit .wire'),
      quant: await quantChoice(page),
      encodeURL: encodes[encodes.length - 1],
      score: await text('#view-score'),
      classify: await text('#classify-answer'),
      bars: await page.locator('#view-classify .bars li').count(),
      alert: await alertText(page),
    };
  }],

  // Sampling, with a bad n first: the page shows the server's problem.
  ['sample-bad-n', async (page) => {
    const p = problems(page);
    await page.fill('#sample-n', '65');
    await page.click('#sample-draw');
    await settled(page);
    p.stop();
    return { alert: await alertText(page), problem: p.got[0] || null };
  }],

  // vae's 8 digits of seed 1, drawn twice (the second time from the
  // keyboard): the Go test checks both against /v1/sample.
  ['sample', async (page) => {
    const c = calls(page, '/v1/sample');
    await page.selectOption('#sample-model', 'vae');
    await page.fill('#sample-n', '8');
    await page.fill('#sample-seed', '1');
    await page.click('#sample-draw');
    await settled(page);
    const first = await digitsShown(page, '#sample-digits');
    const seedFirst = await text(page, '#sample-seed-used');
    await page.locator('#sample-draw').focus();
    await page.keyboard.press('Enter');
    await settled(page);
    c.stop();
    return {
      calls: c.got, first, second: await digitsShown(page, '#sample-digits'),
      seedFirst, seed: await text(page, '#sample-seed-used'),
      summary: await text(page, '#sample-summary'), timing: await text(page, '#sample-timing'),
      alert: await alertText(page),
    };
  }],

  // No seed: the server picks one, and the page shows its X-Seed; "Keep
  // this seed" puts it in the seed field.
  ['sample-random', async (page) => {
    const c = calls(page, '/v1/sample');
    await page.fill('#sample-seed', '');
    await page.fill('#sample-n', '16');
    await page.click('#sample-draw');
    await settled(page);
    c.stop();
    const r = {
      calls: c.got, digits: await digitsShown(page, '#sample-digits'),
      seed: await text(page, '#sample-seed-used'), summary: await text(page, '#sample-summary'),
      keepVisible: await page.locator('#sample-keep').isVisible(),
      alert: await alertText(page),
    };
    await page.click('#sample-keep');
    r.seedField = await page.inputValue('#sample-seed');
    return r;
  }],

  // Interpolation from the drawn 7 to the example 0 in 6 steps, with vae:
  // what the page sent and shows go back to the Go test.
  ['interpolate', async (page) => {
    const c = calls(page, '/v1/interpolate');
    await page.selectOption('#interp-model', 'vae');
    await page.getByLabel('To the digit').selectOption({ label: 'Example 0' });
    await page.fill('#interp-k', '6');
    await page.press('#interp-k', 'Enter');
    await settled(page);
    c.stop();
    return {
      calls: c.got, inputState: await lastB64(page, 'input'),
      digits: await digitsShown(page, '#interp-digits'),
      from: await imgPixels(page, '#interp-from img'), to: await imgPixels(page, '#interp-target img'),
      summary: await text(page, '#interp-summary'), timing: await text(page, '#interp-timing'),
      alert: await alertText(page),
    };
  }],

  // Screenshots and axe-core on the desktop, with every view filled in.
  ['desktop', async (page) => {
    await page.setViewportSize(DESKTOP);
    await page.evaluate(() => document.activeElement?.blur()); // no focus ring in the picture
    await page.screenshot({ path: path.join(SHOTS, 'page-desktop.png'), fullPage: true });
    return { axe: await axe(page) };
  }],

  // The same at a phone's 390×844.
  ['phone', async (page) => {
    await page.setViewportSize(PHONE);
    await page.evaluate(() => window.aeserve.rerun());
    await settled(page);
    await page.evaluate(() => window.scrollTo(0, 0));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await page.screenshot({ path: path.join(SHOTS, 'page-phone.png'), fullPage: true });
    const r = { axe: await axe(page), overflow };
    await page.setViewportSize(DESKTOP);
    return r;
  }],

  // The classifier after the denoiser.
  ['denoise', async (page) => {
    await page.check('#classify-denoise');
    await settled(page);
    return { classify: (await page.locator('#classify-answer').innerText()).trim() };
  }],

  // The compact model's 47-byte int8 latent: the dtype it defaults to,
  // chosen again by its label; a 7 drawn anew; what the page sent and got
  // on the way (the Go test checks them against the server), what it says
  // of the latent, the heat map of it and the decoded digit. The page's
  // own parseLatent reads the latent back, for the Go test to compare with
  // api.Latent's values.
  ['quant', async (page) => {
    await page.selectOption('#model', 'compact');
    await settled(page);
    const initial = await quantChoice(page);
    await page.click('#clear');
    await page.getByLabel('Send the latent as').selectOption('int8');
    await settled(page);
    const encodes = [];
    const decodes = [];
    const onReq = (r) => {
      if (r.method() !== 'POST') return;
      const p = new URL(r.url()).pathname;
      const h = r.headers();
      const x = { url: r.url(), type: h['content-type'], accept: h.accept, body: r.postDataBuffer()?.toString('base64') };
      if (p === '/v1/encode') encodes.push(x);
      if (p === '/v1/decode') decodes.push(x);
    };
    page.on('request', onReq);
    await drawSeven(page);
    await settled(page);
    page.off('request', onReq);
    const latent = decodes[decodes.length - 1]?.body;
    const parsed = latent && await page.evaluate(async (b64) => {
      const { parseLatent } = await import('/static/pixels.js');
      const l = parseLatent(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
      return { dtype: l.dtype, shape: l.shape, scale: l.scale, values: Array.from(l.values) };
    }, latent);
    const text = async (sel) => (await page.locator(sel).innerText()).trim();
    const receivedVisible = await page.locator('#tile-received img').isVisible();
    return {
      initial,
      quant: await quantChoice(page),
      encode: encodes[encodes.length - 1] || null,
      decode: decodes[decodes.length - 1] || null,
      parsed: parsed || null,
      transmit: await text('#view-transmit .wire'),
      receivedLabel: await text('#tile-received .tile-label'),
      receivedVisible,
      received: receivedVisible ? await imgPixels(page, '#tile-received img') : null,
      latentCaption: await text('#tile-latent figcaption'),
      latentVisible: await page.locator('#tile-latent canvas').isVisible(),
      alert: await alertText(page),
    };
  }],

  // A file that is no image: the page shows the server's problem.
  ['bad-file', async (page) => {
    const p = problems(page);
    await page.setInputFiles('#file', { name: 'not-a-digit.png', mimeType: 'image/png', buffer: Buffer.from('this is not a PNG\n') });
    await settled(page);
    p.stop();
    return { alert: await alertText(page), problem: p.got[0] || null };
  }],

  // /docs: Swagger UI renders the served spec's routes, and "Try it out"
  // calls the server.
  ['docs', async (page) => {
    await page.goto(`${BASE_URL}/docs`);
    await page.locator('.opblock').first().waitFor();
    const ops = await page.locator('.opblock').evaluateAll((els) => els.map((e) => {
      const m = e.querySelector('.opblock-summary-method')?.textContent.trim();
      const p = e.querySelector('.opblock-summary-path')?.getAttribute('data-path');
      return `${m} ${p}`;
    }));
    const op = page.locator('#operations-operations-healthz');
    await op.locator('.opblock-summary-control').click();
    await op.locator('button.try-out__btn').click();
    await op.locator('button.execute').click();
    const status = (await op.locator('.live-responses-table tr.response .response-col_status').first().innerText()).trim();
    const body = (await op.locator('.live-responses-table .response-col_description pre').first().innerText()).trim();
    return { ops, tryItOut: { status, body } };
  }],
];

await main();

// The server's HTTP API as the page uses it: every call is timed, sends the
// bearer token when one is given, and turns an error answer into an
// ApiError carrying the problem's title and detail (RFC 9457), which the
// page shows as they come.

export class ApiError extends Error {
  constructor(status, title, detail, path) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.path = path;
  }
}

// A call's answer: the response, its body as read, and the time from
// sending the request to having read the whole body.
export class Answer {
  constructor(res, body, ms, call) {
    this.res = res;
    this.body = body; // ArrayBuffer
    this.ms = ms;
    this.call = call; // "POST /v1/encode", for captions
  }
  header(name) { return this.res.headers.get(name); }
  json() { return JSON.parse(new TextDecoder().decode(this.body)); }
  blob(type) { return new Blob([this.body], { type: type || this.res.headers.get('Content-Type') || '' }); }
}

const PROBLEM = 'application/problem+json';

export class Api {
  // token returns the bearer token to send, or "" for none.
  constructor(token) {
    this.token = token;
  }

  async call(method, path, { body, type, accept } = {}) {
    const headers = {};
    const tok = this.token();
    if (tok) headers.Authorization = `Bearer ${tok}`;
    if (type) headers['Content-Type'] = type;
    if (accept) headers.Accept = accept;
    const t0 = performance.now();
    let res;
    let buf;
    try {
      res = await fetch(path, { method, body, headers, cache: 'no-store' });
      buf = await res.arrayBuffer();
    } catch (err) {
      throw new ApiError(0, 'The server cannot be reached', `${method} ${path}: ${err.message}`, path);
    }
    const ms = performance.now() - t0;
    const name = `${method} ${path.split('?')[0]}`;
    if (!res.ok) {
      let title = `${res.status} ${res.statusText}`;
      let detail = '';
      if ((res.headers.get('Content-Type') || '').startsWith(PROBLEM)) {
        try {
          const p = JSON.parse(new TextDecoder().decode(buf));
          title = p.title || title;
          detail = p.detail || '';
        } catch { /* keep the status line */ }
      }
      throw new ApiError(res.status, title, detail, name);
    }
    return new Answer(res, buf, ms, name);
  }

  // An image as the body: a canvas's or the page's own PNG raw, a user's
  // file in multipart (field img), so that the server tells its format
  // from its bytes whatever the browser guessed.
  // A PNG the page made goes as its bytes rather than as a Blob, which
  // browsers may stream from storage: what was sent is then plain to see
  // (devtools, the browser test).
  static async imageBody(image) {
    if (image instanceof File) {
      const form = new FormData();
      form.append('img', image, image.name);
      return { body: form };
    }
    return { body: new Uint8Array(await image.arrayBuffer()), type: image.type || 'image/png' };
  }

  models() { return this.call('GET', '/v1/models').then((a) => a.json()); }

  // post sends one image to an image route with the query q.
  async post(route, image, q = {}, accept) {
    const qs = new URLSearchParams(q).toString();
    return this.call('POST', route + (qs ? `?${qs}` : ''), { ...(await Api.imageBody(image)), accept });
  }

  // postImages sends several PNGs (Blobs) in one multipart/form-data body,
  // one field img each, in order, with the query q. The body is built
  // here as bytes, as imageBody sends the page's own PNGs, so that what
  // was sent is plain to see.
  async postImages(route, images, q = {}, accept) {
    const boundary = `aeserve-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    const enc = new TextEncoder();
    const parts = [];
    for (const [i, image] of images.entries()) {
      parts.push(enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="img"; filename="digit-${i + 1}.png"\r\n` +
        `Content-Type: ${image.type || 'image/png'}\r\n\r\n`));
      parts.push(new Uint8Array(await image.arrayBuffer()), enc.encode('\r\n'));
    }
    parts.push(enc.encode(`--${boundary}--\r\n`));
    const body = new Uint8Array(await new Blob(parts).arrayBuffer());
    const qs = new URLSearchParams(q).toString();
    return this.call('POST', route + (qs ? `?${qs}` : ''), { body, type: `multipart/form-data; boundary=${boundary}`, accept });
  }

  // sample asks /v1/sample for new digits (no body), as JSON: one PNG each.
  sample(q) {
    return this.call('POST', `/v1/sample?${new URLSearchParams(q)}`, { accept: 'application/json' });
  }

  decode(latent) {
    return this.call('POST', '/v1/decode', { body: latent, type: 'application/octet-stream', accept: 'image/png' });
  }
}

// The srn signature pad: records signatures with Pointer Events and enrolls / verifies them
// through the server's HTTP/JSON API (proto3 JSON of srn.v1, same origin as this page).

const SUBJECT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const TOKEN_KEY = 'srn.token';

const $ = (id) => document.getElementById(id);

// A message for the user: a failed client-side check or an error the API answered with.
class UserError extends Error {}

// ---- Signatures ------------------------------------------------------------------------------

// The pen-down samples of one signature, in canvas CSS pixels (y downward) and milliseconds
// since its first sample.
class Signature {
  constructor() {
    this.x = [];
    this.y = [];
    this.t = [];
    this.pressure = [];
    this.strokeStart = [];
    this.t0 = null;
    // Pressure is sent only when every stroke came from a device that measures it.
    this.realPressure = true;
  }

  get length() {
    return this.x.length;
  }

  // Starts a stroke; `realPressure` tells whether its device measures pressure (so far).
  beginStroke(realPressure) {
    this.pendingStart = true;
    this.strokeRealPressure = realPressure;
  }

  // Adds one sample; returns false for an exact repeat of the previous one.
  add(x, y, timeStamp, pressure, measured) {
    if (this.t0 === null) this.t0 = timeStamp;
    const n = this.length;
    // Timestamps of coalesced events can tie or, rarely, step back: keep time non-decreasing.
    const t = Math.max(timeStamp - this.t0, n > 0 ? this.t[n - 1] : 0);
    if (!this.pendingStart && n > 0 && x === this.x[n - 1] && y === this.y[n - 1] &&
        t === this.t[n - 1] && pressure === this.pressure[n - 1]) {
      return false;
    }
    if (measured) this.strokeRealPressure = true;
    this.x.push(x);
    this.y.push(y);
    this.t.push(t);
    this.pressure.push(pressure);
    this.strokeStart.push(Boolean(this.pendingStart));
    this.pendingStart = false;
    return true;
  }

  endStroke() {
    if (!this.strokeRealPressure) this.realPressure = false;
  }

  // Whether the server can compute features: at least 2 samples, not all at one point.
  isUsable() {
    if (this.length < 2) return false;
    return this.x.some((x, i) => x !== this.x[0] || this.y[i] !== this.y[0]);
  }

  // The PenTrajectory message (proto3 JSON). y is sent pointing up, as tablets report it and as
  // the model was trained (the canvas's y points down; only the shape matters, not the origin).
  toPen() {
    const round = (v, digits) => Number(v.toFixed(digits));
    const pen = {
      x: this.x.map((v) => round(v, 2)),
      y: this.y.map((v) => round(-v, 2)),
      tMs: this.t.map((v) => round(v, 3)),
      strokeStart: this.strokeStart.slice(),
    };
    if (this.realPressure && this.length > 0) pen.pressure = this.pressure.map((v) => round(v, 4));
    return pen;
  }
}

// Draws `sig` on a 2D context already scaled to CSS pixels, mapping (x, y) through `map`.
function drawSignature(ctx, sig, map = (x, y) => [x, y], scale = 1) {
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.strokeStyle = getComputedStyle(ctx.canvas).color || '#123';
  ctx.fillStyle = ctx.strokeStyle;
  for (let i = 0; i < sig.length; i++) drawSample(ctx, sig, i, map, scale);
}

function lineWidth(sig, i, scale) {
  const p = sig.pressure[i];
  const w = p > 0 ? 0.8 + 3.2 * p : 2.5;
  return Math.max(0.6, w * scale);
}

// Draws sample i: a dot at a stroke's start, else the segment from sample i - 1.
function drawSample(ctx, sig, i, map, scale) {
  const [x, y] = map(sig.x[i], sig.y[i]);
  const width = lineWidth(sig, i, scale);
  if (sig.strokeStart[i] || i === 0) {
    ctx.beginPath();
    ctx.arc(x, y, width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  const [px, py] = map(sig.x[i - 1], sig.y[i - 1]);
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(px, py);
  ctx.lineTo(x, y);
  ctx.stroke();
}

// ---- The pad ---------------------------------------------------------------------------------

class Pad {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.signature = new Signature();
    this.pointerId = null;
    this.finished = false;  // a new stroke clears the pad (after Verify)
    new ResizeObserver(() => this.resize()).observe(canvas);
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      canvas.addEventListener(type, (e) => this.up(e));
    }
  }

  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(rect.width * dpr));
    this.canvas.height = Math.max(1, Math.round(rect.height * dpr));
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.redraw();
  }

  redraw() {
    const rect = this.canvas.getBoundingClientRect();
    this.ctx.clearRect(0, 0, rect.width, rect.height);
    drawSignature(this.ctx, this.signature);
  }

  clear() {
    this.signature = new Signature();
    this.pointerId = null;
    this.finished = false;
    this.redraw();
  }

  // Real pressure: a pen, or a value other than the 0 / 0.5 of devices that have none.
  static measured(e) {
    return e.pointerType === 'pen' || (e.pressure !== 0 && e.pressure !== 0.5);
  }

  sample(e) {
    const x = e.clientX - this.rect.left;
    const y = e.clientY - this.rect.top;
    const sig = this.signature;
    if (sig.add(x, y, e.timeStamp, e.pressure, Pad.measured(e))) {
      drawSample(this.ctx, sig, sig.length - 1, (a, b) => [a, b], 1);
    }
  }

  down(e) {
    if (this.pointerId !== null) return;  // one pointer at a time
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    e.preventDefault();
    if (this.finished) this.clear();
    this.pointerId = e.pointerId;
    this.canvas.setPointerCapture?.(e.pointerId);
    this.rect = this.canvas.getBoundingClientRect();
    this.signature.beginStroke(e.pointerType === 'pen');
    this.sample(e);
  }

  move(e) {
    if (e.pointerId !== this.pointerId) return;
    e.preventDefault();
    const events = e.getCoalescedEvents?.() ?? [];
    for (const ev of events.length > 0 ? events : [e]) this.sample(ev);
  }

  up(e) {
    if (e.pointerId !== this.pointerId) return;
    this.pointerId = null;
    this.signature.endStroke();
    if (this.canvas.hasPointerCapture?.(e.pointerId)) {
      this.canvas.releasePointerCapture(e.pointerId);
    }
  }

  // The finished signature, or a UserError saying what is missing.
  take() {
    if (this.pointerId !== null) throw new UserError('Finish the stroke first.');
    if (this.signature.length === 0) throw new UserError('Draw a signature first.');
    if (!this.signature.isUsable()) {
      throw new UserError('The signature is too short: draw a longer one.');
    }
    return this.signature;
  }
}

// ---- The API ---------------------------------------------------------------------------------

const tokenInput = $('token');

// Calls the API; returns the parsed JSON or throws a UserError with the API's message, the HTTP
// status and the gRPC status name.
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = tokenInput.value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new UserError(`Cannot reach the server (${method} ${path}): ${e.message}`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // handled below
  }
  if (!response.ok) {
    const error = json?.error;
    if (error && typeof error.message === 'string') {
      const status = error.status || 'ERROR';
      throw new UserError(`${status} (HTTP ${response.status}): ${error.message}`);
    }
    const detail = text.trim().slice(0, 300) || response.statusText || 'no body';
    throw new UserError(`HTTP ${response.status} from ${method} ${path}: ${detail}`);
  }
  if (json === null || typeof json !== 'object') {
    throw new UserError(`HTTP ${response.status} from ${method} ${path}: the answer is not JSON`);
  }
  return json;
}

const subjectPath = (id, verb) => `./v1/subjects/${encodeURIComponent(id)}:${verb}`;

// ---- The page --------------------------------------------------------------------------------

const pad = new Pad($('pad'));
const references = [];

function subjectId() {
  const id = $('subject').value.trim();
  if (!id) {
    $('subject').focus();
    throw new UserError('Enter a subject id.');
  }
  if (!SUBJECT_ID.test(id)) {
    $('subject').focus();
    throw new UserError(
      'The subject id must be 1–128 characters from letters, digits and . _ : @ -');
  }
  return id;
}

function setStatus(text) {
  $('status').textContent = text;
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = false;
  $('error').scrollIntoView({ block: 'nearest' });
}

function hideError() {
  $('error').textContent = '';
  $('error').hidden = true;
}

// Runs one user action: disables its button meanwhile, shows its outcome or its error.
async function run(button, what, action) {
  hideError();
  if (button) button.disabled = true;
  try {
    setStatus(await action());
  } catch (e) {
    const message = e instanceof UserError ? e.message : `Unexpected error: ${e}`;
    showError(message);
    setStatus(`${what} failed.`);
    if (!(e instanceof UserError)) console.error(e);
  } finally {
    if (button) button.disabled = false;
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// A small picture of a reference, fitted to the thumbnail.
function thumbnail(sig, index) {
  const item = document.createElement('li');
  const canvas = document.createElement('canvas');
  const w = 120;
  const h = 60;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `Reference ${index}`);
  item.append(canvas);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const minX = Math.min(...sig.x);
  const minY = Math.min(...sig.y);
  const spanX = Math.max(...sig.x) - minX || 1;
  const spanY = Math.max(...sig.y) - minY || 1;
  const margin = 4;
  const s = Math.min((w - 2 * margin) / spanX, (h - 2 * margin) / spanY);
  const ox = (w - s * spanX) / 2;
  const oy = (h - s * spanY) / 2;
  drawSignature(ctx, sig, (x, y) => [ox + (x - minX) * s, oy + (y - minY) * s], 0.5);
  return item;
}

function showReferences() {
  $('reference-count').textContent = String(references.length);
  $('thumbnails').replaceChildren(...references.map((sig, i) => thumbnail(sig, i + 1)));
}

function showVerdict(v) {
  const result = $('result');
  result.classList.remove('accepted', 'rejected');
  if (!v) {
    result.textContent = '–';
    for (const id of ['score', 'threshold', 'threshold-source', 'decided-by']) {
      $(id).textContent = '–';
      delete $(id).dataset.value;
    }
    return;
  }
  result.textContent = v.accepted ? 'ACCEPTED' : 'REJECTED';
  result.classList.add(v.accepted ? 'accepted' : 'rejected');
  $('score').textContent = v.score.toFixed(4);
  $('score').dataset.value = String(v.score);
  $('threshold').textContent = v.threshold.toFixed(4);
  $('threshold').dataset.value = String(v.threshold);
  $('threshold-source').textContent = v.thresholdSource || '(not given)';
  $('decided-by').textContent = v.modelId || '(not given)';
}

async function loadModel() {
  $('model').textContent = 'loading…';
  try {
    const m = await api('GET', './v1/model');
    $('model').textContent = `${m.family || 'unknown family'} (id ${m.modelId || '?'})`;
    $('model').dataset.modelId = m.modelId || '';
    return 'Ready.';
  } catch (e) {
    $('model').textContent = 'unavailable';
    throw e;
  }
}

$('clear').addEventListener('click', () => {
  pad.clear();
  hideError();
  setStatus('Cleared.');
});

$('add-reference').addEventListener('click', (e) =>
  run(e.currentTarget, 'Adding the reference', async () => {
    references.push(pad.take());
    pad.clear();
    showReferences();
    return `Added reference ${references.length}; sign again or enroll.`;
  }));

$('discard-references').addEventListener('click', (e) =>
  run(e.currentTarget, 'Discarding', async () => {
    references.length = 0;
    showReferences();
    return 'Discarded the references.';
  }));

$('enroll').addEventListener('click', (e) =>
  run(e.currentTarget, 'Enroll', async () => {
    const id = subjectId();
    if (references.length === 0) {
      throw new UserError('Add at least one reference first (sign, then "Add reference").');
    }
    const body = {
      references: references.map((sig) => ({ pen: sig.toPen() })),
      mode: 'ENROLL_MODE_REPLACE',
    };
    const { subject } = await api('POST', subjectPath(id, 'enroll'), body);
    const count = subject?.referenceCount ?? references.length;
    references.length = 0;
    showReferences();
    return `Enrolled ${subject?.subjectId || id} with ${plural(count, 'reference')}`;
  }));

$('verify').addEventListener('click', (e) =>
  run(e.currentTarget, 'Verify', async () => {
    showVerdict(null);
    const id = subjectId();
    const sig = pad.take();
    $('result').textContent = 'verifying…';
    try {
      const v = await api('POST', subjectPath(id, 'verify'), { query: { pen: sig.toPen() } });
      showVerdict(v);
      pad.finished = true;
      const decision = v.accepted ? 'ACCEPTED' : 'REJECTED';
      return `Verified ${id}: ${decision} (score ${v.score.toFixed(4)}, ` +
        `threshold ${v.threshold.toFixed(4)})`;
    } catch (err) {
      showVerdict(null);
      throw err;
    }
  }));

tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
tokenInput.addEventListener('input', () => {
  const token = tokenInput.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
});
tokenInput.addEventListener('change', () => run(null, 'Loading the model', loadModel));

run(null, 'Loading the model', loadModel);

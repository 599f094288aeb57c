// End-to-end test of the signature pad page (web/) in a real Chromium against the real server.
//
//   node pad_e2e.mjs --server=PATH_TO_srn-server --data=DATA_DIR --out=DIR
//
// Starts srn-server with its HTTP API on a free loopback port and an in-memory store, opens the
// page in headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM), and signs real SVC2004
// signatures on the pad as a pen would: Chrome DevTools Protocol pen events carrying the
// tablet's pressure and its own timestamps (so the page records the recorded timing, not the
// speed of the test). Enrolls U1 with genuine S1-S5, verifies genuine S6 (must be ACCEPTED) and
// skilled forgery S21 (must be REJECTED), checks the page shows the API's own score (the same
// request replayed from node), the threshold and the deciding model, that the page's recording
// scores as its file sent as is, and that API errors (an unknown subject) and client-side checks
// reach the page's #error. Screenshots go to --out.
// Prints "RESULT web_pad_e2e passed ..." and exits 0; exits 1 naming what failed; prints
// "SKIP ..." and exits 0 (or --skip_exit_code) when the data folder has no svc2004.
// --page_from=WEB_DIR serves the page's files from WEB_DIR instead of the server's compiled-in
// copy (which must otherwise equal the repository's web/), to try the page without a rebuild.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const USAGE = 'usage: node pad_e2e.mjs --server=PATH_TO_srn-server --data=DATA_DIR --out=DIR ' +
  '[--page_from=WEB_DIR] [--skip_exit_code=N]';
// The page's files as the repository holds them (the server compiles them in).
const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const WEB_FILES = { '/': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css' };
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SERVER_START_SECONDS = 60;
const USER = 'U1';
const ENROLL = [1, 2, 3, 4, 5];
const GENUINE = 6;
const FORGERY = 21;
// How far the score of a signature drawn on the page may be from that of its file.
const FILE_SCORE_TOLERANCE = 0.02;

class TestFailure extends Error {}

function fail(message) {
  throw new TestFailure(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

function parseArgs(argv) {
  const args = {};
  for (const arg of argv) {
    const m = /^--([a-z_]+)=(.*)$/.exec(arg);
    if (!m) {
      console.error(`unknown argument "${arg}"\n${USAGE}`);
      process.exit(2);
    }
    args[m[1]] = m[2];
  }
  for (const name of ['server', 'data', 'out']) {
    if (!args[name]) {
      console.error(`--${name} is required\n${USAGE}`);
      process.exit(2);
    }
  }
  return args;
}

// ---- SVC2004 ---------------------------------------------------------------------------------

// One Task 2 file: N, then N lines `X Y TimeStamp ButtonStatus Azimuth Altitude Pressure`.
function readSvc(file) {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  const n = Number(lines[0]);
  check(Number.isInteger(n) && n === lines.length - 1,
    `${file}: the first line says ${lines[0]} samples, the file has ${lines.length - 1}`);
  return lines.slice(1).map((line, i) => {
    const v = line.trim().split(/\s+/).map(Number);
    check(v.length === 7 && v.every(Number.isInteger), `${file}:${i + 2}: not 7 integers`);
    return { x: v[0], y: v[1], t: v[2], start: i === 0 || (v[3] & 1) === 0, pressure: v[6] };
  });
}

// The samples fitted into a w x h box (margin m), aspect kept, y flipped (tablet y points up).
function fitToBox(samples, w, h, m) {
  const xs = samples.map((s) => s.x);
  const ys = samples.map((s) => s.y);
  const minX = Math.min(...xs);
  const maxY = Math.max(...ys);
  const spanX = Math.max(...xs) - minX || 1;
  const spanY = maxY - Math.min(...ys) || 1;
  const scale = Math.min((w - 2 * m) / spanX, (h - 2 * m) / spanY);
  const ox = (w - scale * spanX) / 2;
  const oy = (h - scale * spanY) / 2;
  return samples.map((s) => ({
    ...s,
    x: ox + (s.x - minX) * scale,
    y: oy + (maxY - s.y) * scale,
  }));
}

// ---- The server ------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Starts the server; resolves once GET /v1/model answers 200.
async function startServer(binary, port) {
  const args = ['--listen=127.0.0.1:0', '--metrics_listen=', '--store=:memory:',
    `--http_listen=127.0.0.1:${port}`];
  // No tokens from the environment: the test runs the server open, on loopback.
  const env = { ...process.env };
  delete env.SRN_ADMIN_TOKEN;
  delete env.SRN_READER_TOKEN;
  const child = spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = { child, stderr: '', exited: null, base: `http://127.0.0.1:${port}` };
  child.stdout.on('data', (d) => { server.stderr += d; });
  child.stderr.on('data', (d) => { server.stderr += d; });
  child.on('exit', (code, signal) => { server.exited = signal ? `signal ${signal}` : `${code}`; });
  child.on('error', (e) => { server.exited = `spawn error: ${e.message}`; });
  const deadline = Date.now() + SERVER_START_SECONDS * 1000;
  let last = 'no answer yet';
  for (;;) {
    if (server.exited !== null) {
      fail(`the server exited (${server.exited}) before answering GET /v1/model; it said:\n` +
        `${server.stderr.trim() || '(nothing)'}\ncommand: ${binary} ${args.join(' ')}`);
    }
    try {
      const r = await fetch(`${server.base}/v1/model`, { signal: AbortSignal.timeout(5000) });
      if (r.ok) return server;
      last = `HTTP ${r.status}: ${(await r.text()).slice(0, 300)}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    if (Date.now() > deadline) {
      fail(`GET ${server.base}/v1/model did not answer 200 within ${SERVER_START_SECONDS} s ` +
        `(last: ${last}); the server said:\n${server.stderr.trim() || '(nothing)'}`);
    }
    await sleep(200);
  }
}

async function stopServer(server) {
  if (!server || server.exited !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10000);
  await exited;
  clearTimeout(timer);
}

// The API's answer to one request, from node.
async function callApi(server, method, route, body) {
  const r = await fetch(server.base + route, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body,
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    fail(`${method} ${route}: HTTP ${r.status} with a body that is not JSON: ` +
      text.slice(0, 300));
  }
  return { status: r.status, json };
}

// ---- The page --------------------------------------------------------------------------------

// Signs `file` on the pad with CDP pen events: pressure from the tablet (0..1023 -> 0..1) and
// the recorded time of each sample as the event's timestamp.
async function sign(page, cdp, file) {
  const pad = page.locator('#pad');
  await pad.scrollIntoViewIfNeeded();
  const box = await pad.boundingBox();
  check(box && box.width > 100 && box.height > 50,
    `#pad is not visible (box ${JSON.stringify(box)})`);
  const raw = readSvc(file);
  const samples = fitToBox(raw, box.width, box.height, 12);
  const base = Date.now() / 1000;
  const t0 = samples[0].t;
  const event = (type, s) => cdp.send('Input.dispatchMouseEvent', {
    type,
    x: box.x + s.x,
    y: box.y + s.y,
    button: 'left',
    buttons: type === 'mouseReleased' ? 0 : 1,
    clickCount: 1,
    pointerType: 'pen',
    force: type === 'mouseReleased' ? 0 : Math.min(1, s.pressure / 1023),
    timestamp: base + (s.t - t0) / 1000,
  });
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    if (s.start) {
      if (i > 0) await event('mouseReleased', samples[i - 1]);
      await event('mousePressed', s);
    } else {
      await event('mouseMoved', s);
    }
  }
  await event('mouseReleased', samples[samples.length - 1]);
  return raw;
}

async function text(page, selector) {
  return (await page.locator(selector).textContent())?.trim() ?? '';
}

// Waits until #error shows a message matching `pattern`.
async function expectError(page, pattern, what) {
  await page.waitForFunction((source) => {
    const error = document.getElementById('error');
    return !error.hidden && new RegExp(source, 'i').test(error.textContent);
  }, pattern.source, { timeout: 5000 }).catch(async () => {
    fail(`${what}: #error says "${await text(page, '#error')}", expected ${pattern}`);
  });
}

// Clicks `button` and waits for the API call it makes; returns the request and its response.
async function clickForApi(page, button, routeSuffix) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname.endsWith(routeSuffix),
      { timeout: 60000 }),
    page.click(button),
  ]);
  return { request: response.request(), response };
}

// Checks the trajectory the page sent against the file it was drawn from.
function checkPen(pen, raw, what) {
  check(pen && Array.isArray(pen.x), `${what}: the page sent no pen trajectory`);
  const n = pen.x.length;
  for (const k of ['y', 'tMs', 'pressure', 'strokeStart']) {
    check(Array.isArray(pen[k]) && pen[k].length === n,
      `${what}: pen.${k} has ${pen[k]?.length} values for ${n} samples (pen pressure expected)`);
  }
  // The page drops exact repeats only; SVC2004 files have few or none.
  check(n >= raw.length - 5 && n <= raw.length,
    `${what}: the page recorded ${n} samples of the file's ${raw.length}`);
  const strokes = raw.filter((s) => s.start).length;
  const sent = pen.strokeStart.filter(Boolean).length;
  check(sent === strokes, `${what}: ${sent} stroke starts sent, the file has ${strokes}`);
  check(pen.tMs[0] === 0, `${what}: tMs starts at ${pen.tMs[0]}, not 0`);
  check(pen.tMs.every((t, i) => i === 0 || t >= pen.tMs[i - 1]), `${what}: tMs goes backwards`);
  const span = raw[raw.length - 1].t - raw[0].t;
  const sentSpan = pen.tMs[n - 1];
  check(Math.abs(sentSpan - span) <= 20,
    `${what}: the page recorded ${sentSpan} ms for a signature the tablet recorded in ${span} ms`);
  check(pen.pressure.every((p) => p >= 0 && p <= 1), `${what}: pressure outside [0, 1]`);
}

async function verifyOnPage(page, server, out, name, expected) {
  await page.click('#clear');
  const raw = await sign(page, server.cdp, server.file(name));
  const { request, response } = await clickForApi(page, '#verify', ':verify');
  check(response.status() === 200,
    `verify ${name}: HTTP ${response.status()}: ${(await response.text()).slice(0, 300)}`);
  await page.waitForFunction(
    () => /^(ACCEPTED|REJECTED)$/.test(document.getElementById('result').textContent.trim()));
  const body = request.postDataJSON();
  checkPen(body?.query?.pen, raw, `verify ${name}`);
  const shown = {
    result: await text(page, '#result'),
    score: await text(page, '#score'),
    scoreValue: await page.locator('#score').getAttribute('data-value'),
    threshold: await text(page, '#threshold'),
    thresholdSource: await text(page, '#threshold-source'),
    model: await text(page, '#decided-by'),
    status: await text(page, '#status'),
    error: await page.locator('#error').isVisible(),
  };
  await page.screenshot({ path: path.join(out, `pad_verify_${expected === 'ACCEPTED' ?
    'genuine' : 'forgery'}.png`), fullPage: true });
  // The same request from node: the page must show the API's own answer.
  const route = new URL(request.url()).pathname;
  const api = await callApi(server, 'POST', route, request.postData());
  check(api.status === 200,
    `verify ${name} from node: HTTP ${api.status} ${JSON.stringify(api.json)}`);
  const v = api.json;
  for (const key of ['score', 'accepted', 'threshold', 'thresholdSource', 'modelId']) {
    check(key in v, `verify ${name}: the API's answer lacks "${key}": ${JSON.stringify(v)}`);
  }
  check(!shown.error, `verify ${name}: #error is shown: ${await text(page, '#error')}`);
  check(shown.score === v.score.toFixed(4),
    `verify ${name}: the page shows score ${shown.score}, the API says ${v.score}`);
  check(Math.abs(Number(shown.scoreValue) - v.score) <= 1e-6,
    `verify ${name}: the page's score ${shown.scoreValue} differs from the API's ${v.score}`);
  check(shown.threshold === v.threshold.toFixed(4),
    `verify ${name}: the page shows threshold ${shown.threshold}, the API says ${v.threshold}`);
  check(shown.thresholdSource === (v.thresholdSource || '(not given)'),
    `verify ${name}: threshold source shown "${shown.thresholdSource}", ` +
    `API "${v.thresholdSource}"`);
  check(shown.model === v.modelId && /^[0-9a-f]{16}$/.test(v.modelId),
    `verify ${name}: the page shows model "${shown.model}", the API says "${v.modelId}"`);
  check(shown.result === (v.accepted ? 'ACCEPTED' : 'REJECTED'),
    `verify ${name}: the page shows ${shown.result}, the API says accepted=${v.accepted}`);
  check(shown.status.includes(shown.result), `verify ${name}: #status is "${shown.status}"`);
  check(shown.result === expected,
    `verify ${name}: ${shown.result} (score ${v.score}, threshold ${v.threshold}, ` +
    `${v.thresholdSource}); expected ${expected}`);
  return { ...v, samples: body.query.pen.x.length, body: request.postData() };
}

// ---- The test --------------------------------------------------------------------------------

async function run(args) {
  const task2 = path.join(args.data, 'svc2004', 'Task2');
  if (!fs.existsSync(path.join(task2, `${USER}S1.TXT`))) {
    console.log(`SKIP web_pad_e2e: no SVC2004 signatures in ${task2} (set SRN_DATA_DIR)`);
    return Number(args.skip_exit_code || 0);
  }
  check(fs.existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM=path)`);
  check(fs.existsSync(args.server), `no server binary at ${args.server}`);
  fs.mkdirSync(args.out, { recursive: true });

  const port = await freePort();
  let server;
  let browser;
  const pageErrors = [];
  try {
    server = await startServer(path.resolve(args.server), port);
    server.file = (name) => path.join(task2, `${USER}S${name}.TXT`);
    const model = await callApi(server, 'GET', '/v1/model');
    check(model.status === 200 && model.json.modelId, `GET /v1/model: ${JSON.stringify(model)}`);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    const context = await browser.newContext({ viewport: { width: 1000, height: 1000 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // The 4xx answers the test provokes are logged by Chromium as failed loads.
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) {
        pageErrors.push(`console error: ${m.text()}`);
      }
    });
    server.cdp = await context.newCDPSession(page);

    // The server's copy of the page must be the repository's (else the test would test another
    // page); --page_from serves the page's files from a folder instead, to try changes to the
    // page without rebuilding the server.
    for (const [route, name] of Object.entries(WEB_FILES)) {
      const r = await fetch(server.base + route);
      check(r.ok, `GET ${route} answered HTTP ${r.status}`);
      const served = Buffer.from(await r.arrayBuffer());
      if (!args.page_from && !served.equals(fs.readFileSync(path.join(WEB_DIR, name)))) {
        fail(`the server's ${route} differs from web/${name}: rebuild srn-server (it compiles ` +
          'web/ in), or pass --page_from=web to try the page without rebuilding');
      }
    }
    if (args.page_from) {
      await page.route((url) => url.origin === server.base && url.pathname in WEB_FILES,
        async (route) => {
          const name = WEB_FILES[new URL(route.request().url()).pathname];
          // The server's answer (its headers: content type, CSP) with the folder's file.
          const response = await route.fetch();
          await route.fulfill({ response, body: fs.readFileSync(path.join(args.page_from, name)) });
        });
    }
    // The page and the model it shows.
    const loaded = await page.goto(`${server.base}/`);
    check(loaded.ok(), `GET / answered HTTP ${loaded.status()}`);
    await page.waitForFunction((id) => document.getElementById('model').textContent.includes(id),
      model.json.modelId, { timeout: 15000 }).catch(async () => {
      fail(`#model shows "${await text(page, '#model')}", not the model id ${model.json.modelId}` +
        `; #error: "${await text(page, '#error')}"`);
    });
    const modelShown = await text(page, '#model');
    check(modelShown.includes(model.json.family),
      `#model shows "${modelShown}" without the family ${model.json.family}`);

    // Client-side checks.
    await page.click('#verify');
    await expectError(page, /enter a subject id/i, 'verify with no subject id');
    await page.fill('#subject', USER);
    await page.click('#verify');
    await expectError(page, /draw a signature first/i, 'verify with an empty pad');
    await page.click('#enroll');
    await expectError(page, /add at least one reference/i, 'enroll with no references');

    // The token: kept in sessionStorage, sent as a bearer token (the open server ignores it).
    await page.fill('#token', 'e2e-token');
    const [modelRequest] = await Promise.all([
      page.waitForRequest((r) => new URL(r.url()).pathname === '/v1/model'),
      page.locator('#token').blur(),
    ]);
    check((await modelRequest.allHeaders()).authorization === 'Bearer e2e-token',
      'a token in #token is not sent as "Authorization: Bearer <token>"');
    check(await page.evaluate(() => sessionStorage.getItem('srn.token')) === 'e2e-token',
      'the token is not kept in sessionStorage');
    await page.fill('#token', '');
    await page.locator('#token').blur();

    // Enroll U1 with S1..S5 drawn on the pad.
    const raws = [];
    for (const s of ENROLL) {
      raws.push(await sign(page, server.cdp, server.file(s)));
      await page.click('#add-reference');
      await page.waitForFunction((n) =>
        document.getElementById('reference-count').textContent.trim() === String(n), raws.length);
      check(await page.locator('#error').isHidden(),
        `add reference S${s}: #error says "${await text(page, '#error')}"`);
    }
    check(await page.locator('#thumbnails canvas').count() === ENROLL.length,
      'the page does not show a thumbnail per reference');
    await page.screenshot({ path: path.join(args.out, 'pad_references.png'), fullPage: true });
    const enrolled = await clickForApi(page, '#enroll', ':enroll');
    check(enrolled.response.status() === 200,
      `enroll: HTTP ${enrolled.response.status()}: ${await enrolled.response.text()}`);
    check(new URL(enrolled.request.url()).pathname === `/v1/subjects/${USER}:enroll`,
      `enroll went to ${enrolled.request.url()}`);
    const enrollBody = enrolled.request.postDataJSON();
    check(enrollBody.mode === 'ENROLL_MODE_REPLACE', `enroll mode ${enrollBody.mode}`);
    check(enrollBody.references?.length === ENROLL.length,
      `enroll sent ${enrollBody.references?.length} references`);
    enrollBody.references.forEach((r, i) => checkPen(r.pen, raws[i], `reference S${ENROLL[i]}`));
    const want = `Enrolled ${USER} with ${ENROLL.length} references`;
    await page.waitForFunction((w) => document.getElementById('status').textContent.includes(w),
      want).catch(async () => fail(`#status says "${await text(page, '#status')}", not "${want}"`));

    // Verify a genuine signature and a skilled forgery.
    const genuine = await verifyOnPage(page, server, args.out, GENUINE, 'ACCEPTED');
    const forgery = await verifyOnPage(page, server, args.out, FORGERY, 'REJECTED');

    // An API error: verifying a subject nobody enrolled.
    const unknown = 'nobody-enrolled';
    await page.fill('#subject', unknown);
    const failed = await clickForApi(page, '#verify', ':verify');
    const apiError = await callApi(server, 'POST', new URL(failed.request.url()).pathname,
      failed.request.postData());
    check(failed.response.status() === 404 && apiError.status === 404,
      `verify an unknown subject: HTTP ${failed.response.status()} (from node ${apiError.status})`);
    const e = apiError.json.error;
    check(e?.status === 'NOT_FOUND' && typeof e.message === 'string' && e.code === 404,
      `verify an unknown subject: the API's error is ${JSON.stringify(apiError.json)}`);
    await page.locator('#error').waitFor({ state: 'visible' });
    const shownError = await text(page, '#error');
    check(shownError.includes('NOT_FOUND') && shownError.includes('404') &&
      shownError.includes(e.message),
    `#error says "${shownError}"; expected NOT_FOUND, 404 and the API's "${e.message}"`);
    check(await text(page, '#result') === '–', 'a failed verify leaves a decision shown');
    await page.screenshot({ path: path.join(args.out, 'pad_error_not_found.png'), fullPage: true });

    // A mouse has no pressure: the page must leave it out.
    await page.fill('#subject', USER);
    await page.click('#clear');
    const box = await page.locator('#pad').boundingBox();
    await page.mouse.move(box.x + 40, box.y + box.height / 2);
    await page.mouse.down();
    for (let i = 1; i <= 40; i++) {
      const y = box.y + box.height / 2 + Math.sin(i / 4) * box.height / 4;
      await page.mouse.move(box.x + 40 + i * (box.width - 80) / 40, y, { steps: 2 });
    }
    await page.mouse.up();
    const mouse = await clickForApi(page, '#verify', ':verify');
    check(mouse.response.status() === 200,
      `verify a mouse signature: HTTP ${mouse.response.status()}`);
    const mousePen = mouse.request.postDataJSON().query.pen;
    check(!('pressure' in mousePen) && mousePen.x.length >= 40 &&
      mousePen.strokeStart.filter(Boolean).length === 1,
    `a mouse signature was sent as ${mousePen.x.length} samples, ` +
      `${mousePen.strokeStart.filter(Boolean).length} strokes, keys ${Object.keys(mousePen)}`);
    await page.waitForFunction(
      () => /^(ACCEPTED|REJECTED)$/.test(document.getElementById('result').textContent.trim()));

    // The files themselves (tablet coordinates, y up, and clock), sent from node: the page's
    // recording (other scale, browser clock) must score about the same.
    const direct = {};
    for (const [key, s] of [['genuine', GENUINE], ['forgery', FORGERY]]) {
      const raw = readSvc(server.file(s));
      const pen = {
        x: raw.map((p) => p.x), y: raw.map((p) => p.y), tMs: raw.map((p) => p.t - raw[0].t),
        pressure: raw.map((p) => p.pressure), strokeStart: raw.map((p) => p.start),
      };
      const r = await callApi(server, 'POST', `/v1/subjects/${USER}:verify`,
        JSON.stringify({ query: { pen } }));
      check(r.status === 200, `verify the raw S${s} from node: ${JSON.stringify(r.json)}`);
      direct[key] = r.json.score;
    }
    for (const [key, v] of [['genuine', genuine], ['forgery', forgery]]) {
      check(Math.abs(v.score - direct[key]) <= FILE_SCORE_TOLERANCE,
        `${key}: the page's signature scores ${v.score}, the file itself ${direct[key]}: the ` +
        'page does not record what was drawn faithfully');
    }

    check(pageErrors.length === 0, `the page logged errors:\n${pageErrors.join('\n')}`);
    const f = (v) => Number(v).toFixed(4);
    console.log(`genuine S${GENUINE}: ${genuine.accepted ? 'ACCEPTED' : 'REJECTED'} score ` +
      `${f(genuine.score)} (the file as is: ${f(direct.genuine)}), ${genuine.samples} samples`);
    console.log(`forgery S${FORGERY}: ${forgery.accepted ? 'ACCEPTED' : 'REJECTED'} score ` +
      `${f(forgery.score)} (the file as is: ${f(direct.forgery)}), ${forgery.samples} samples`);
    console.log(`threshold ${f(genuine.threshold)} (${genuine.thresholdSource}), model ` +
      `${genuine.modelId} (${model.json.family}); screenshots in ${args.out}`);
    console.log(`RESULT web_pad_e2e passed genuine=${f(genuine.score)} ` +
      `forgery=${f(forgery.score)} threshold=${f(genuine.threshold)} model=${genuine.modelId}` +
      (args.page_from ? ` page_from=${args.page_from}` : ''));
    return 0;
  } catch (e) {
    if (e instanceof TestFailure && pageErrors.length > 0) {
      e.message += `\n(the page also logged:\n${pageErrors.join('\n')})`;
    }
    throw e;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopServer(server);
    if (server) fs.writeFileSync(path.join(args.out, 'server.log'), server.stderr);
  }
}

const args = parseArgs(process.argv.slice(2));
run(args).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`FAIL web_pad_e2e: ${e instanceof TestFailure ? e.message : e.stack || e}`);
    process.exit(1);
  });

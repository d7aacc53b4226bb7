// The demo page in a real browser: headless Chromium (Debian's) loads http://127.0.0.1:PORT/,
// the page opens ws://.../handshake (with permessage-deflate) and shows the switch itself (the
// request the browser sent, the 101's headers, what was negotiated), the round-trip time, the
// metrics the server pushes every second, and copy-paste commands; a message typed into the
// form and sent with the button comes back and is shown. A screenshot of the page is saved as
// a test artifact (BUILD/artifacts/demo.png). Usage: node test_demo_chromium.mjs BIN
// With SY_TEST_TLS=1 (tests/run's "[tls]" run) the same over https:// and wss://: the server
// listens with --tls-listen and --tls-self-signed, Chromium runs with
// --ignore-certificate-errors, and the page must have opened wss://.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const bin = process.argv[2] || 'build/switchyard';
const tls = !['', '0', undefined].includes(process.env.SY_TEST_TLS);
const scheme = tls ? 'https' : 'http';
let passed = 0, failed = 0;

function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

let chromium;
try {
  ({ chromium } = require(join(here, 'node_modules', 'playwright-core')));
} catch (e) {
  console.log('skip: playwright-core is not installed (npm install in tests/integration)');
  finish();
}
if (!existsSync('/usr/bin/chromium')) {
  console.log('skip: /usr/bin/chromium is not installed');
  finish();
}

function startServer() {
  return new Promise((resolve, reject) => {
    const listen = tls ? ['--tls-listen', '127.0.0.1:0', '--tls-self-signed']
                       : ['--listen', '127.0.0.1:0'];
    const p = spawn(bin, ['serve', ...listen, '--workers', '1', '--root',
                          join(here, '..', '..', 'demo')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const t = setTimeout(() => reject(new Error('server did not start: ' + err)), 10000);
    p.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/listening on .* \(port (\d+)\)/);
      if (m) { clearTimeout(t); resolve({ proc: p, port: Number(m[1]), log: () => err }); }
    });
    p.on('exit', (code) => reject(new Error('server exited ' + code + ': ' + err)));
  });
}

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log('ok ' + name);
  } catch (e) {
    failed++;
    console.log('FAIL ' + name + ': ' + (e && e.stack || e));
  }
}

const srv = await startServer();
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-quic',  // playwright gives each launch a fresh, empty profile
         ...(tls ? ['--ignore-certificate-errors'] : [])],  // the self-signed certificate
});
if (tls) console.log('TLS mode: https:// and wss:// (self-signed, --ignore-certificate-errors)');
try {
  const page = await browser.newPage();
  await test(`demo page loads over ${scheme} and the WebSocket opens with permessage-deflate`, async () => {
    const resp = await page.goto(`${scheme}://127.0.0.1:${srv.port}/`, { timeout: 15000 });
    if (resp.status() !== 200) throw new Error('status ' + resp.status());
    await page.waitForFunction(() => document.getElementById('status').textContent === 'open',
                               null, { timeout: 10000 });
    const ext = await page.textContent('#ext');
    if (!ext.includes('permessage-deflate')) throw new Error('extensions shown: ' + ext);
    if (tls) {
      const proto = await page.evaluate(() => location.protocol);
      if (proto !== 'https:') throw new Error('page protocol ' + proto);
      const sec = await resp.securityDetails();
      if (!sec || !/^TLS 1\.[23]$/.test(sec.protocol))
        throw new Error('TLS details of the page: ' + JSON.stringify(sec));
    }
  });
  await test('a typed message is echoed and shown', async () => {
    const msg = 'héllo from chromium ✓ ' + 'x'.repeat(300);
    await page.fill('#msg', msg);
    await page.click('#send');
    await page.waitForFunction((m) => window.switchyardReceived.includes(m), msg,
                               { timeout: 10000 });
    const log = await page.textContent('#log');
    if (!log.includes('← ' + msg)) throw new Error('echo not shown in the log');
  });
  await test('many messages in a burst come back in order', async () => {
    const got = await page.evaluate(() => new Promise((resolve, reject) => {
      const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo');
      const out = [];
      ws.onopen = () => { for (let i = 0; i < 200; i++) ws.send('m' + i + ' ' + 'y'.repeat(i)); };
      ws.onmessage = (e) => { out.push(e.data); if (out.length === 200) { ws.close(1000); resolve(out); } };
      ws.onerror = () => reject(new Error('websocket error'));
      setTimeout(() => reject(new Error('timeout, got ' + out.length)), 10000);
    }));
    for (let i = 0; i < 200; i++)
      if (got[i] !== 'm' + i + ' ' + 'y'.repeat(i)) throw new Error('message ' + i + ' differs');
  });
  await test('the page shows the request the browser sent and the switch it got', async () => {
    await page.waitForFunction(() => window.switchyardHandshake !== null, null, { timeout: 10000 });
    const req = await page.textContent('#req');
    const resp = await page.textContent('#resp');
    if (tls) {
      // Chromium speaks h2 by ALPN here: the WebSocket is an extended CONNECT (RFC 8441).
      if (!req.startsWith(':method: CONNECT\r\n') || !req.includes(':protocol: websocket'))
        throw new Error('request shown: ' + req);
      if (!/sec-websocket-version: 13/i.test(req)) throw new Error('request lacks the version');
      if (!resp.startsWith(':status: 200')) throw new Error('response shown: ' + resp);
      if ((await page.textContent('#n-http')) !== 'HTTP/2') throw new Error('http version');
    } else {
      if (!req.startsWith('GET /handshake HTTP/1.1\r\n')) throw new Error('request shown: ' + req);
      for (const h of ['Sec-WebSocket-Key:', 'Sec-WebSocket-Version: 13', 'Upgrade: websocket',
                       'Sec-WebSocket-Extensions: permessage-deflate'])
        if (!req.toLowerCase().includes(h.toLowerCase())) throw new Error('request lacks ' + h + ': ' + req);
      if (!resp.startsWith('HTTP/1.1 101 Switching Protocols')) throw new Error('response shown: ' + resp);
      for (const h of ['Sec-WebSocket-Accept:', 'Upgrade: websocket', 'Connection: Upgrade'])
        if (!resp.includes(h)) throw new Error('response lacks ' + h + ': ' + resp);
      // The Accept shown is the one for the Key shown (RFC 6455 §4.2.2).
      const key = /sec-websocket-key: *(\S+)/i.exec(req)[1];
      const acc = /Sec-WebSocket-Accept: *(\S+)/.exec(resp)[1];
      const { createHash } = await import('node:crypto');
      const want = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (acc !== want) throw new Error('accept ' + acc + ' is not for key ' + key);
      if ((await page.textContent('#n-http')) !== 'HTTP/1.1') throw new Error('http version');
    }
    if (!resp.includes('Sec-WebSocket-Extensions: permessage-deflate'))
      throw new Error('response lacks the extension: ' + resp);
    if (!(await page.textContent('#n-ext')).includes('permessage-deflate')) throw new Error('extensions');
    if (!/^[0-9a-f]{16}$/.test(await page.textContent('#n-id'))) throw new Error('request id');
  });
  await test('round-trip time and pushed metrics are shown', async () => {
    await page.waitForFunction(() => window.switchyardRtt.length > 0, null, { timeout: 10000 });
    if (!/^\d+\.\d+ ms/.test(await page.textContent('#rtt'))) throw new Error('rtt shown');
    // The page asks once at open; later updates come unasked, every second. An update may
    // have been made before the page's own messages arrived (a push racing the ask): wait
    // for a later one that counts them, not merely for a different one.
    const first = await page.evaluate(() => window.switchyardMetrics);
    await page.waitForFunction((f) => {
      const m = window.switchyardMetrics;
      return m && m !== f && m.messages_in >= 1;
    }, first, { timeout: 8000 }).catch(() => {});
    const m = await page.evaluate(() => window.switchyardMetrics);
    if (!(m.websockets_open >= 1)) throw new Error('websockets_open ' + m.websockets_open);
    if (!(m.upgrades_switched >= 1 && m.requests_total >= 1 && m.messages_in >= 1))
      throw new Error('metrics ' + JSON.stringify(m));
    const row = await page.textContent('#m-websockets_open');
    if (!row.includes('WebSockets open')) throw new Error('metrics table: ' + row);
  });
  await test('copy-paste commands name this server', async () => {
    const cmds = await page.textContent('#cmds');
    for (const want of [`${scheme}://127.0.0.1:${srv.port}/raw`, `${scheme}://127.0.0.1:${srv.port}/body`,
                        `Upgrade: upper`, `/metrics`, `/stream?`])
      if (!cmds.includes(want)) throw new Error('commands lack ' + want);
  });
  await test('two tabs in one chat room both see a message', async () => {
    const other = await browser.newPage();
    await other.goto(`${scheme}://127.0.0.1:${srv.port}/`, { timeout: 15000 });
    for (const p of [page, other]) {
      await p.fill('#chat-room', 'tabs');
      await p.click('#chat-join button');
      await p.waitForFunction(
          () => document.getElementById('chat-status').textContent === 'in room tabs', null,
          { timeout: 10000 });
    }
    await page.fill('#chat-msg', 'hello tabs ✓');
    await page.click('#chat-send');
    for (const p of [page, other])
      await p.waitForFunction(() => window.switchyardChat.includes('hello tabs ✓'), null,
                              { timeout: 10000 });
    await other.close();
  });
  await test('screenshot saved as a test artifact', async () => {
    const dir = join(dirname(bin), 'artifacts');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, tls ? 'demo-tls.png' : 'demo.png');
    await page.screenshot({ path: file, fullPage: true });
    if (!existsSync(file)) throw new Error('no screenshot');
    console.log('  screenshot: ' + file);
  });
  if (tls) await test('the WebSocket of an https page is wss:// and echoes', async () => {
    const got = await page.evaluate(() => new Promise((resolve, reject) => {
      const ws = new WebSocket('wss://' + location.host + '/echo');
      ws.onopen = () => ws.send('over wss');
      ws.onmessage = (e) => { ws.close(1000); resolve([ws.url, e.data]); };
      ws.onerror = () => reject(new Error('websocket error'));
      setTimeout(() => reject(new Error('timeout')), 10000);
    }));
    if (!got[0].startsWith('wss://') || got[1] !== 'over wss') throw new Error(JSON.stringify(got));
  });
  await test('the browser sees a clean close code', async () => {
    const code = await page.evaluate(() => new Promise((resolve) => {
      const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo');
      ws.onopen = () => ws.close(4001, 'bye');
      ws.onclose = (e) => resolve(e.code);
    }));
    if (code !== 4001) throw new Error('close code ' + code);
  });
} finally {
  await browser.close();
  srv.proc.kill('SIGTERM');
}
finish();

// The demo page in a real browser: headless Chromium (Debian's) loads http://127.0.0.1:PORT/,
// the page opens ws://.../echo (with permessage-deflate), a message typed into the form and
// sent with the button comes back and is shown. Usage: node test_demo_chromium.mjs BIN
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const bin = process.argv[2] || 'build/switchyard';
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
    const p = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--workers', '1', '--root',
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
         '--disable-quic'],  // playwright gives each launch a fresh, empty profile
});
try {
  const page = await browser.newPage();
  await test('demo page loads and the WebSocket opens with permessage-deflate', async () => {
    const resp = await page.goto(`http://127.0.0.1:${srv.port}/`, { timeout: 15000 });
    if (resp.status() !== 200) throw new Error('status ' + resp.status());
    await page.waitForFunction(() => document.getElementById('status').textContent === 'open',
                               null, { timeout: 10000 });
    const ext = await page.textContent('#ext');
    if (!ext.includes('permessage-deflate')) throw new Error('extensions shown: ' + ext);
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
      const ws = new WebSocket('ws://' + location.host + '/echo');
      const out = [];
      ws.onopen = () => { for (let i = 0; i < 200; i++) ws.send('m' + i + ' ' + 'y'.repeat(i)); };
      ws.onmessage = (e) => { out.push(e.data); if (out.length === 200) { ws.close(1000); resolve(out); } };
      ws.onerror = () => reject(new Error('websocket error'));
      setTimeout(() => reject(new Error('timeout, got ' + out.length)), 10000);
    }));
    for (let i = 0; i < 200; i++)
      if (got[i] !== 'm' + i + ' ' + 'y'.repeat(i)) throw new Error('message ' + i + ' differs');
  });
  await test('two tabs in one chat room both see a message', async () => {
    const other = await browser.newPage();
    await other.goto(`http://127.0.0.1:${srv.port}/`, { timeout: 15000 });
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
  await test('the browser sees a clean close code', async () => {
    const code = await page.evaluate(() => new Promise((resolve) => {
      const ws = new WebSocket('ws://' + location.host + '/echo');
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

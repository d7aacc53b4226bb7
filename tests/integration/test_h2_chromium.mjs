// The demo page over HTTPS in a real browser: headless Chromium (Debian's) loads
// https://127.0.0.1:PORT/ with ALPN h2, and the page's WebSocket to /echo goes over the same
// HTTP/2 connection (RFC 8441), which the server's access log shows (proto=ws-over-h2).
// Usage: node test_h2_chromium.mjs BIN
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
    const p = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0',
                          '--tls-self-signed', '--workers', '1', '--root',
                          join(here, '..', '..', 'demo')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '', out = '';
    const ports = [];
    const t = setTimeout(() => reject(new Error('server did not start: ' + err)), 10000);
    p.stdout.on('data', (d) => { out += d.toString(); });
    p.stderr.on('data', (d) => {
      err += d.toString();
      for (const m of err.matchAll(/listening on .* \(port (\d+)\)/g))
        if (!ports.includes(Number(m[1]))) ports.push(Number(m[1]));
      if (ports.length === 2) {
        clearTimeout(t);
        resolve({ proc: p, tlsPort: ports[1], log: () => out });
      }
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
         '--disable-quic', '--ignore-certificate-errors'],
});
try {
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  await test('the demo page loads over HTTP/2 and its WebSocket opens', async () => {
    const resp = await page.goto(`https://127.0.0.1:${srv.tlsPort}/`, { timeout: 15000 });
    if (resp.status() !== 200) throw new Error('status ' + resp.status());
    await page.waitForFunction(() => document.getElementById('status').textContent === 'open',
                               null, { timeout: 10000 });
    const ext = await page.textContent('#ext');
    if (!ext.includes('permessage-deflate')) throw new Error('extensions shown: ' + ext);
  });
  await test('messages are echoed over the HTTP/2 stream', async () => {
    const got = await page.evaluate(() => new Promise((resolve, reject) => {
      const ws = new WebSocket('wss://' + location.host + '/echo');
      const out = [];
      ws.onopen = () => { for (let i = 0; i < 100; i++) ws.send('m' + i + ' ' + 'z'.repeat(i * 10)); };
      ws.onmessage = (e) => { out.push(e.data); if (out.length === 100) { ws.close(1000); resolve(out); } };
      ws.onerror = () => reject(new Error('websocket error'));
      setTimeout(() => reject(new Error('timeout, got ' + out.length)), 10000);
    }));
    for (let i = 0; i < 100; i++)
      if (got[i] !== 'm' + i + ' ' + 'z'.repeat(i * 10)) throw new Error('message ' + i + ' differs');
  });
  await test('the access log shows h2 and ws-over-h2', async () => {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !srv.log().includes('proto=ws-over-h2'))
      await new Promise((r) => setTimeout(r, 100));
    const log = srv.log();
    if (!/"GET \/ HTTP\/2\.0" 200 .*proto=h2\b/.test(log)) throw new Error('page not over h2:\n' + log);
    if (!log.includes('proto=ws-over-h2')) throw new Error('WebSocket not over h2:\n' + log);
  });
} finally {
  await browser.close();
  srv.proc.kill('SIGTERM');
}
finish();

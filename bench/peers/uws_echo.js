// WebSocket echo server on uWebSockets (native addon of uWebSockets.js, shipped by the npm
// package @trufflesuite/uws-js-unofficial) for bench/ws_compare.sh.
//   node uws_echo.js PORT [deflate]
//   TLS_CERT=cert.pem TLS_KEY=key.pem node uws_echo.js PORT    (wss://: uWS.SSLApp, for
//   bench/tls_compare.sh)
// The addon is required directly from the package's binaries/ folder (the .node matching
// this platform and Node ABI), bypassing the package's JS wrapper.
// "deflate" = DEDICATED_COMPRESSOR (= _256KB: 15-bit window, memLevel 8, context takeover:
// zlib's defaults, as switchyard uses) | DEDICATED_DECOMPRESSOR (32 KiB window); override
// with UWS_COMPRESSION, e.g.
// UWS_COMPRESSION=SHARED_COMPRESSOR. Replies are sent with compress=true when enabled.
// One event-loop thread; maxPayloadLength 64 MiB (its default, 16 KiB, is too small).
'use strict';
const fs = require('fs');
const path = require('path');
const base = process.env.UWS_DIR ||
  path.join(__dirname, 'node_modules', '@trufflesuite', 'uws-js-unofficial');
const want = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
let file = null;
for (const d of ['binaries', 'dist']) {
  const f = path.join(base, d, want);
  if (fs.existsSync(f)) { file = f; break; }
}
if (!file) {
  console.error(`uws_echo: ${want} not found under ${base}`);
  process.exit(2);
}
const uWS = require(file);
const port = parseInt(process.argv[2] || '9001', 10);
const deflate = process.argv[3] === 'deflate';
let compression = uWS.DISABLED;
if (deflate) {
  const names = (process.env.UWS_COMPRESSION || 'DEDICATED_COMPRESSOR|DEDICATED_DECOMPRESSOR').split('|');
  compression = names.reduce((acc, n) => acc | uWS[n.trim()], 0);
}
const tls = process.env.TLS_CERT && process.env.TLS_KEY;
const app = tls ? uWS.SSLApp({ cert_file_name: process.env.TLS_CERT,
                               key_file_name: process.env.TLS_KEY })
                : uWS.App();
app.ws('/echo', {
  compression,
  maxPayloadLength: 64 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  message: (ws, msg, isBinary) => { ws.send(msg, isBinary, deflate); },
}).listen('127.0.0.1', port, (tok) => {
  if (!tok) {
    console.error(`uws_echo: cannot listen on ${port}`);
    process.exit(1);
  }
  console.error(`uws echo on 127.0.0.1:${port} compression=${compression}${tls ? ' (TLS)' : ''}`);
});
process.on('SIGTERM', () => process.exit(0));

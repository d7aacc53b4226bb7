// WebSocket echo over TLS on Node's `ws` (Debian node-ws) behind Node's https server, for
// bench/tls_compare.sh.
//   node node_wss_echo.js PORT CERT KEY [deflate]
// Echo at /echo; ws defaults otherwise (as bench/peers/node_ws_echo.js). One thread.
'use strict';
const fs = require('fs');
const https = require('https');
let WebSocket;
try {
  WebSocket = require('/usr/share/nodejs/ws');
} catch (e) {
  WebSocket = require('ws');
}
const [portArg, cert, key, mode] = process.argv.slice(2);
const port = parseInt(portArg || '9443', 10);
if (!cert || !key) {
  console.error('usage: node node_wss_echo.js PORT CERT KEY [deflate]');
  process.exit(2);
}
const deflate = mode === 'deflate';
// The cipher order of the other servers in the comparison (switchyard, nginx): AES-128-GCM
// first, the server's order wins.
const tls = require('tls');
const server = https.createServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:' +
    tls.DEFAULT_CIPHERS,
  honorCipherOrder: true,
});
const wss = new WebSocket.Server({
  server,
  path: '/echo',
  maxPayload: 64 * 1024 * 1024,
  clientTracking: false,
  perMessageDeflate: deflate,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
server.on('tlsClientError', () => {});
server.listen(port, '127.0.0.1', () =>
  console.error(`node-ws wss echo on 127.0.0.1:${port} deflate=${deflate}`));
process.on('SIGTERM', () => process.exit(0));

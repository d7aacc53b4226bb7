// WebSocket echo server on Node's `ws` (Debian node-ws) for bench/ws_compare.sh.
//   node node_ws_echo.js PORT [deflate]
// "deflate" enables permessage-deflate with ws's defaults (context takeover both ways,
// 15-bit windows, replies under 1024 B are sent uncompressed).
// Echo at /echo.
'use strict';
let WebSocket;
try {
  WebSocket = require('/usr/share/nodejs/ws');
} catch (e) {
  WebSocket = require('ws');
}
const port = parseInt(process.argv[2] || '9003', 10);
const deflate = process.argv[3] === 'deflate';
const wss = new WebSocket.Server({
  host: '127.0.0.1',
  port,
  path: '/echo',
  maxPayload: 64 * 1024 * 1024,
  clientTracking: false,
  perMessageDeflate: deflate, // ws defaults: threshold 1024 B, level defaults
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.error(`node-ws echo on 127.0.0.1:${port} deflate=${deflate}`));
process.on('SIGTERM', () => process.exit(0));

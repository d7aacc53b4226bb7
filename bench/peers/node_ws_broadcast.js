// Chat-room fan-out on Node's `ws` (Debian node-ws) for bench/pubsub_compare.sh: the usual
// broadcast loop, a Set of connections per room and ws.send to each.
//   node node_ws_broadcast.js PORT
// /chat?room=NAME; the sender receives its own message too. No compression.
'use strict';
let WebSocket;
try {
  WebSocket = require('/usr/share/nodejs/ws');
} catch (e) {
  WebSocket = require('ws');
}
const port = parseInt(process.argv[2] || '9013', 10);
const rooms = new Map();
const wss = new WebSocket.Server({ host: '127.0.0.1', port, path: '/chat',
                                   maxPayload: 16 * 1024 * 1024, clientTracking: false,
                                   perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const m = /[?&]room=([^&]*)/.exec(req.url);
  const room = m ? m[1] : 'lobby';
  if (!rooms.has(room)) rooms.set(room, new Set());
  const members = rooms.get(room);
  members.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const c of members) c.send(data, { binary: isBinary });
  });
  ws.on('close', () => members.delete(ws));
  ws.on('error', () => {});
});
wss.on('listening', () => console.error(`node-ws broadcast on 127.0.0.1:${port}`));
process.on('SIGTERM', () => process.exit(0));

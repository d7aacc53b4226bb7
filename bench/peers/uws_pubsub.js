// Chat-room fan-out on uWebSockets (native addon of uWebSockets.js from the npm package
// @trufflesuite/uws-js-unofficial, as in uws_echo.js) for bench/pubsub_compare.sh.
//   node uws_pubsub.js PORT
// /chat?room=NAME: each connection subscribes to the room's topic at open; every message is
// published to the room with app.publish (the sender included: it is subscribed too).
// One event-loop thread; no compression.
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
  console.error(`uws_pubsub: ${want} not found under ${base}`);
  process.exit(2);
}
const uWS = require(file);
const port = parseInt(process.argv[2] || '9011', 10);
const app = uWS.App();
app.ws('/chat', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    const m = /(?:^|&)room=([^&]*)/.exec(req.getQuery() || '');
    res.upgrade({ room: 'room:' + (m ? m[1] : 'lobby') }, req.getHeader('sec-websocket-key'),
                req.getHeader('sec-websocket-protocol'),
                req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => { ws.subscribe(ws.getUserData ? ws.getUserData().room : ws.room); },
  message: (ws, msg, isBinary) => {
    app.publish(ws.getUserData ? ws.getUserData().room : ws.room, msg, isBinary);
  },
}).listen('127.0.0.1', port, (tok) => {
  if (!tok) {
    console.error(`uws_pubsub: cannot listen on ${port}`);
    process.exit(1);
  }
  console.error(`uws pubsub on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));

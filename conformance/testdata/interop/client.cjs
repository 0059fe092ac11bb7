// Interop client for wspushd's permessage-deflate (Node, the ws package).
//
// Usage: node client.cjs ws://HOST:PORT/ws?topics=z SIZE...
//
// Connects with perMessageDeflate (ws's default for clients; messages of
// 1 KB and more are compressed), and for each SIZE publishes SIZE bytes of
// JSON to topic z, then reads until its delivery (the data byte for byte)
// and the publish's ack. Prints one JSON line: the negotiated extensions
// and the sizes echoed. NODE_PATH must lead to the ws package.
'use strict';
const WebSocket = require('ws');

function dataOf(n, i) {
  const parts = [];
  for (let k = 0; parts.join(' ').length < n; k++) parts.push(`ABC ${100 + ((k * 7 + i) % 3)}.${String((k * 13) % 100).padStart(2, '0')}`);
  return JSON.stringify({ v: parts.join(' ').slice(0, Math.max(n - 8, 1)) });
}

const [url, ...sizes] = process.argv.slice(2);
const ws = new WebSocket(url, { perMessageDeflate: true, handshakeTimeout: 10000 });
const timer = setTimeout(() => { console.error('timeout'); process.exit(1); }, 20000);
const echoed = [];
let i = 0;
let data = null;
let delivered = false;

function next() {
  if (i === sizes.length) {
    console.log(JSON.stringify({ extensions: ws.extensions, echoed }));
    clearTimeout(timer);
    ws.close(1000);
    return;
  }
  data = dataOf(Number(sizes[i]), i);
  delivered = false;
  ws.send(`{"op":"publish","topic":"z","id":${i + 1},"data":${data}}`);
}

ws.on('open', next);
ws.on('error', (e) => { console.error(String(e)); process.exit(1); });
ws.on('message', (raw) => {
  const msg = JSON.parse(raw.toString());
  if (msg.topic === 'z') {
    if (JSON.stringify(msg.data) !== data) { console.error(`delivery ${i + 1}: data differs`); process.exit(1); }
    delivered = true;
  } else if (msg.op === 'ack' && msg.id === i + 1) {
    if (!delivered) { console.error(`ack ${i + 1} before its delivery`); process.exit(1); }
    echoed.push(data.length);
    i++;
    next();
  } else if (msg.op === 'error') {
    console.error(`error reply: ${raw}`);
    process.exit(1);
  }
});

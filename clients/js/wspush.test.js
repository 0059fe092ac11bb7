// Tests for wspush.js against a real wspushd (node --test).
//
// wspushd: $WSPUSHD_BIN if set, else built here with `go build` into a temp
// dir. WebSocket: the `ws` package (node 20 has no global WebSocket); make
// test-js installs it into node_modules with npm.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { WspushClient, WspushError, backoffDelay, shouldReconnect, tokenSubject } from './wspush.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

let tmp;
let bin;
const servers = [];

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'wspush-js-'));
  bin = process.env.WSPUSHD_BIN;
  if (!bin) {
    bin = path.join(tmp, 'wspushd');
    execFileSync('go', ['build', '-o', bin, './cmd/wspushd'], {
      cwd: repo,
      env: { ...process.env, CGO_ENABLED: '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 300_000,
    });
  }
}, { timeout: 320_000 });

after(() => {
  for (const s of servers) s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// Starts wspushd on loopback ports the kernel picks and reads them from its
// start line ("wspushd started ... ws=ADDR api=ADDR").
function startServer(extra = []) {
  const args = ['--listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', ...extra];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const server = {
    proc,
    stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
  servers.push(server);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      server.stop();
      reject(new Error(`wspushd did not report its addresses within 10s; log:\n${log}`));
    }, 10_000);
    const onData = (chunk) => {
      log += chunk;
      const m = /\bws=(\S+) api=(\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        server.ws = `ws://${m[1]}/ws`;
        server.api = `http://${m[2]}`;
        resolve(server);
      }
    };
    proc.stdout.setEncoding('utf8').on('data', onData);
    proc.stderr.setEncoding('utf8').on('data', onData);
    proc.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`wspushd exited (${code ?? sig}) before reporting its addresses; log:\n${log}`));
    });
  });
}

// api POSTs body to the server's API and returns the 200 answer.
async function api(server, path, body) {
  const res = await fetch(`${server.api}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const answer = await res.json();
  assert.equal(res.status, 200, `${path}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

const publish = (server, topic, data) => api(server, '/api/publish', { topic, data });

async function waitFor(what, cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A ws WebSocket that records every socket made and every frame sent and
// received, so tests can see the wire and kill a connection abruptly.
function recorder() {
  const sockets = [];
  class Rec extends WebSocket {
    constructor(url) {
      super(url);
      this.url_ = url;
      this.sent = [];
      this.received = [];
      this.on('message', (d) => this.received.push(JSON.parse(String(d))));
      sockets.push(this);
    }
    send(d) {
      this.sent.push(JSON.parse(d));
      super.send(d);
    }
  }
  return { sockets, WebSocket: Rec };
}

let server; // history on, for most tests
let noHistory; // history off: every recovery answers recovered:false
let clientPublish; // --client-publish

before(async () => {
  server = await startServer(['--history-size', '100']);
  noHistory = await startServer([]);
  clientPublish = await startServer(['--client-publish']);
}, { timeout: 30_000 });

test('subscribe: ready resolves on the ack, deliveries arrive in seq order', { timeout: 20_000 }, async () => {
  const rec = recorder();
  const states = [];
  const c = new WspushClient(server.ws, { WebSocket: rec.WebSocket, onstate: (s) => states.push(s) });
  try {
    const got = [];
    const sub = c.subscribe('t.order', (data, meta) => got.push([meta.seq, data]));
    assert.equal(await sub.ready, sub);
    assert.equal(c.state, 'open');
    assert.deepEqual(states, ['open']);
    assert.equal(sub.position.seq, 0);
    let epoch;
    for (let i = 1; i <= 5; i++) epoch = (await publish(server, 't.order', { n: i })).epoch;
    await waitFor('5 deliveries', () => got.length >= 5);
    assert.deepEqual(got, [1, 2, 3, 4, 5].map((n) => [n, { n }]));
    assert.deepEqual(sub.position, { epoch, seq: 5 });
    // the command on the wire: one subscribe with an id, no since
    const subs = rec.sockets[0].sent.filter((m) => m.op === 'subscribe');
    assert.equal(subs.length, 1);
    assert.equal(typeof subs[0].id, 'number');
    assert.equal(subs[0].since, undefined);
  } finally {
    c.close();
  }
});

test('subscribe: an error reply rejects ready with the server code', { timeout: 20_000 }, async () => {
  const c = new WspushClient(server.ws, { WebSocket });
  try {
    const bad = c.subscribe('not a topic!', () => {});
    await assert.rejects(bad.ready, (err) => {
      assert.ok(err instanceof WspushError);
      assert.equal(err.code, 'bad_topic');
      assert.match(err.message, /topic names/);
      return true;
    });
    // the client stays usable, and the failed topic is not kept
    const got = [];
    const ok = c.subscribe('t.after-error', (d) => got.push(d));
    await ok.ready;
    await publish(server, 't.after-error', 1);
    await waitFor('a delivery', () => got.length === 1);
    assert.throws(() => c.subscribe('t.after-error', () => {}), /already subscribed/);
  } finally {
    c.close();
  }
});

test('unsubscribe: no more deliveries', { timeout: 20_000 }, async () => {
  const c = new WspushClient(server.ws, { WebSocket });
  try {
    const got = [];
    const sub = c.subscribe('t.unsub', (d) => got.push(d));
    await sub.ready;
    await publish(server, 't.unsub', 1);
    await waitFor('a delivery', () => got.length === 1);
    await sub.unsubscribe();
    const r = await publish(server, 't.unsub', 2);
    assert.equal(r.recipients, 0);
    await sleep(100);
    assert.deepEqual(got, [1]);
  } finally {
    c.close();
  }
});

test('reconnect: resumes with since, every seq exactly once, in order', { timeout: 30_000 }, async () => {
  const rec = recorder();
  const resets = [];
  const states = [];
  const c = new WspushClient(server.ws, {
    WebSocket: rec.WebSocket, minDelay: 200, maxDelay: 400,
    onstate: (s, d) => states.push([s, d.code]),
  });
  try {
    const seqs = [];
    const data = [];
    const sub = c.subscribe('t.resume', (d, meta) => { seqs.push(meta.seq); data.push(d); },
      { onReset: (info) => resets.push(info) });
    await sub.ready;
    for (let i = 1; i <= 3; i++) await publish(server, 't.resume', i);
    await waitFor('3 deliveries', () => seqs.length === 3);

    // Kill the TCP connection without a close frame (the client sees 1006)
    // and publish while it is away.
    rec.sockets[0].terminate();
    await waitFor('the client to notice the drop', () => c.state === 'connecting');
    for (let i = 4; i <= 6; i++) await publish(server, 't.resume', i);
    await waitFor('a new connection', () => c.state === 'open', 5000);
    for (let i = 7; i <= 9; i++) await publish(server, 't.resume', i);
    await waitFor('9 deliveries', () => seqs.length >= 9);
    await sleep(100); // a duplicate would arrive now

    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(data, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(resets, []);
    assert.equal(rec.sockets.length, 2);
    assert.deepEqual(states.map((s) => s[0]), ['open', 'connecting', 'open']);
    assert.equal(states[1][1], 1006);
    // the resubscribe carried since = the last delivery, and was recovered
    const again = rec.sockets[1].sent.find((m) => m.op === 'subscribe');
    assert.deepEqual(again.since, { 't.resume': { epoch: sub.position.epoch, seq: 3 } });
    const ack = rec.sockets[1].received.find((m) => m.op === 'ack' && m.id === again.id);
    assert.deepEqual(ack.recovered, { 't.resume': true });
  } finally {
    c.close();
  }
});

test('reconnect: a recovery the server refuses calls onReset', { timeout: 30_000 }, async () => {
  const rec = recorder();
  const resets = [];
  const c = new WspushClient(noHistory.ws, { WebSocket: rec.WebSocket, minDelay: 100, maxDelay: 200 });
  try {
    const seqs = [];
    const sub = c.subscribe('t.lost', (d, meta) => seqs.push([meta.seq, d]), { onReset: (i) => resets.push(i) });
    await sub.ready;
    await publish(noHistory, 't.lost', 'a');
    await waitFor('a delivery', () => seqs.length === 1);
    const oldEpoch = sub.position.epoch;
    rec.sockets[0].terminate();
    await waitFor('the client to notice the drop', () => c.state === 'connecting');
    await publish(noHistory, 't.lost', 'missed'); // nobody subscribed, no history: gone
    await waitFor('the reset', () => resets.length === 1, 5000);
    assert.equal(resets[0].reason, 'not_recovered');
    assert.equal(resets[0].topic, 't.lost');
    assert.deepEqual(resets[0].from, { epoch: oldEpoch, seq: 1 });
    assert.deepEqual(resets[0].position, sub.position);
    await publish(noHistory, 't.lost', 'b');
    await waitFor('a delivery after the reset', () => seqs.length === 2);
    assert.equal(seqs[1][1], 'b');
    assert.equal(seqs[1][0], resets[0].position.seq + 1);
  } finally {
    c.close();
  }
});

test('publish: resolves on the ack, rejects with "disabled" without --client-publish', { timeout: 20_000 }, async () => {
  const c = new WspushClient(clientPublish.ws, { WebSocket });
  const off = new WspushClient(server.ws, { WebSocket });
  try {
    const got = [];
    const sub = c.subscribe('t.pub', (d, meta) => got.push([meta.seq, d]));
    await sub.ready;
    await c.publish('t.pub', { hello: 'world' });
    // the server sends the publisher's own delivery before the ack
    assert.deepEqual(got, [[1, { hello: 'world' }]]);
    await assert.rejects(c.publish('not a topic!', 1), (e) => e instanceof WspushError && e.code === 'bad_topic');
    await assert.rejects(c.publish('t.pub', undefined), TypeError);

    await off.subscribe('t.pub', () => {}).ready;
    await assert.rejects(off.publish('t.pub', 1), (e) => {
      assert.ok(e instanceof WspushError);
      assert.equal(e.code, 'disabled');
      return true;
    });
  } finally {
    c.close();
    off.close();
  }
});

test('close() is final: no reconnect, pending subscriptions reject', { timeout: 20_000 }, async () => {
  const rec = recorder();
  const states = [];
  const c = new WspushClient(server.ws, {
    WebSocket: rec.WebSocket, minDelay: 50, maxDelay: 100, onstate: (s) => states.push(s),
  });
  const sub = c.subscribe('t.close', () => {});
  await sub.ready;
  c.close();
  assert.equal(c.state, 'closed');
  await sleep(500); // five times maxDelay
  assert.equal(rec.sockets.length, 1);
  assert.deepEqual(states, ['open', 'closed']);
  assert.equal(rec.sockets[0].readyState, WebSocket.CLOSED);
  assert.throws(() => c.subscribe('t.close2', () => {}), (e) => e.code === 'closed');

  // closed while connecting: ready rejects with code "closed"
  const c2 = new WspushClient(server.ws, { WebSocket });
  const pending = c2.subscribe('t.close3', () => {});
  c2.close();
  await assert.rejects(pending.ready, (e) => e.code === 'closed');
});

// --- without a server: a fake WebSocket the test drives ---

function fakeSockets() {
  const sockets = [];
  class Fake {
    constructor(url) {
      this.url = url;
      this.sent = [];
      sockets.push(this);
    }
    send(d) { this.sent.push(JSON.parse(d)); }
    close() { this.closed = true; }
    open() { this.onopen?.({}); }
    recv(obj) { this.onmessage?.({ data: JSON.stringify(obj) }); }
    drop(code, reason = '') { this.onclose?.({ code, reason }); }
  }
  return { sockets, WebSocket: Fake };
}

test('a live seq gap calls onReset, duplicates are dropped', { timeout: 5000 }, async () => {
  const f = fakeSockets();
  const c = new WspushClient('ws://x/ws', { WebSocket: f.WebSocket, token: async () => 'tok' });
  try {
    await waitFor('a socket', () => f.sockets.length === 1, 1000);
    assert.equal(new URL(f.sockets[0].url).searchParams.get('token'), 'tok');
    const got = [];
    const resets = [];
    const sub = c.subscribe('a', (d, m) => got.push(m.seq), { onReset: (i) => resets.push(i) });
    f.sockets[0].open();
    const cmd = f.sockets[0].sent[0];
    f.sockets[0].recv({ op: 'ack', id: cmd.id, positions: { a: { epoch: 'E1', seq: 10 } } });
    await sub.ready;
    for (const seq of [11, 12, 12, 11, 15, 16, 16]) f.sockets[0].recv({ topic: 'a', seq, data: null });
    assert.deepEqual(got, [11, 12, 15, 16]);
    assert.equal(resets.length, 1);
    assert.deepEqual(resets[0], { topic: 'a', reason: 'gap', from: { epoch: 'E1', seq: 12 }, position: { epoch: 'E1', seq: 14 } });
    // a server reset moves the position
    f.sockets[0].recv({ op: 'reset', topic: 'a', positions: { a: { epoch: 'E2', seq: 40 } } });
    assert.equal(resets[1].reason, 'reset');
    f.sockets[0].recv({ topic: 'a', seq: 41, data: null });
    assert.deepEqual(got, [11, 12, 15, 16, 41]);
    assert.deepEqual(sub.position, { epoch: 'E2', seq: 41 });
  } finally {
    c.close();
  }
});

test('a conflated topic: seq jumps are not gaps, duplicates still dropped', { timeout: 5000 }, async () => {
  const f = fakeSockets();
  const c = new WspushClient('ws://x/ws', { WebSocket: f.WebSocket });
  try {
    await waitFor('a socket', () => f.sockets.length === 1, 1000);
    const got = [];
    const resets = [];
    const sub = c.subscribe('prices', (d, m) => got.push(m.seq), { onReset: (i) => resets.push(i) });
    f.sockets[0].open();
    const cmd = f.sockets[0].sent[0];
    f.sockets[0].recv({ op: 'ack', id: cmd.id, positions: { prices: { epoch: 'E1', seq: 3, conflate: true } } });
    await sub.ready;
    assert.equal(sub.conflated, true);
    for (const seq of [4, 9, 9, 7, 20]) f.sockets[0].recv({ topic: 'prices', seq, data: null });
    assert.deepEqual(got, [4, 9, 20]);
    assert.deepEqual(resets, []);
    assert.deepEqual(sub.position, { epoch: 'E1', seq: 20 });
  } finally {
    c.close();
  }
});

test('publish: "offline" before the connection opens, "disconnected" when it ends before the ack', { timeout: 5000 }, async () => {
  const f = fakeSockets();
  const c = new WspushClient('ws://x/ws', { WebSocket: f.WebSocket, minDelay: 10, maxDelay: 20 });
  try {
    await assert.rejects(c.publish('a', 1), (e) => e.code === 'offline');
    await waitFor('a socket', () => f.sockets.length === 1, 1000);
    f.sockets[0].open();
    const acked = c.publish('a', 1);
    const lost = c.publish('a', 2);
    const [one, two] = f.sockets[0].sent;
    assert.deepEqual([one.op, one.topic, one.data, two.data], ['publish', 'a', 1, 2]);
    f.sockets[0].recv({ op: 'ack', id: one.id });
    await acked;
    f.sockets[0].drop(1006);
    await assert.rejects(lost, (e) => e.code === 'disconnected');
    c.close();
    await assert.rejects(c.publish('a', 3), (e) => e.code === 'closed');
  } finally {
    c.close();
  }
});

// jwt signs claims with HS256 (what wspushd's --jwt-secret verifies).
function jwt(claims, secret = 'test-secret') {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

test('user stream: positions at connect, each message once, gaps and resets reported, since on reconnect', { timeout: 5000 }, async () => {
  const f = fakeSockets();
  const got = [];
  const resets = [];
  const c = new WspushClient('ws://x/ws', {
    WebSocket: f.WebSocket, minDelay: 10, maxDelay: 20, token: jwt({ sub: 'u:42' }),
    onuser: (d, m) => got.push([m.seq, d, m.epoch]), onuserreset: (i) => resets.push(i),
  });
  try {
    await waitFor('a socket', () => f.sockets.length === 1, 1000);
    let q = new URL(f.sockets[0].url).searchParams;
    assert.equal(q.get('positions'), '1');
    assert.equal(q.get('since'), null);
    f.sockets[0].open();
    f.sockets[0].recv({ op: 'subscribed', positions: { '@u:42': { epoch: 'E1', seq: 3 } } });
    assert.equal(c.user, 'u:42');
    assert.deepEqual(c.userPosition, { epoch: 'E1', seq: 3 });
    for (const seq of [3, 4, 5, 5, 7]) f.sockets[0].recv({ user: 'u:42', seq, data: seq });
    f.sockets[0].recv({ user: 'someone-else', seq: 8, data: 8 });
    assert.deepEqual(got, [[4, 4, 'E1'], [5, 5, 'E1'], [7, 7, 'E1']]);
    assert.deepEqual(resets, [{ user: 'u:42', reason: 'gap', from: { epoch: 'E1', seq: 5 }, position: { epoch: 'E1', seq: 6 } }]);
    f.sockets[0].recv({ op: 'reset', user: 'u:42', positions: { '@u:42': { epoch: 'E2', seq: 40 } } });
    assert.deepEqual(resets[1], { user: 'u:42', reason: 'reset', from: { epoch: 'E1', seq: 7 }, position: { epoch: 'E2', seq: 40 } });
    f.sockets[0].recv({ user: 'u:42', seq: 41, data: 41 });

    // reconnect: since names the user stream; recovered:true keeps our seq
    f.sockets[0].drop(1006);
    await waitFor('a reconnect', () => f.sockets.length === 2, 1000);
    q = new URL(f.sockets[1].url).searchParams;
    assert.equal(q.get('positions'), '1');
    assert.equal(q.get('since'), '@u:42:E2:41');
    f.sockets[1].open();
    f.sockets[1].recv({ op: 'subscribed', positions: { '@u:42': { epoch: 'E2', seq: 43 } }, recovered: { '@u:42': true } });
    for (const seq of [41, 42, 43, 44]) f.sockets[1].recv({ user: 'u:42', seq, data: seq });
    assert.deepEqual(got.slice(3).map((g) => g[0]), [41, 42, 43, 44]);
    assert.equal(resets.length, 2);

    // recovered:false: a not_recovered reset, delivery goes on from the server's position
    f.sockets[1].drop(1006);
    await waitFor('a second reconnect', () => f.sockets.length === 3, 1000);
    assert.equal(new URL(f.sockets[2].url).searchParams.get('since'), '@u:42:E2:44');
    f.sockets[2].open();
    f.sockets[2].recv({ op: 'subscribed', positions: { '@u:42': { epoch: 'E3', seq: 2 } }, recovered: { '@u:42': false } });
    assert.deepEqual(resets[2], { user: 'u:42', reason: 'not_recovered', from: { epoch: 'E2', seq: 44 }, position: { epoch: 'E3', seq: 2 } });
    f.sockets[2].recv({ user: 'u:42', seq: 3, data: 3 });
    assert.deepEqual(got.at(-1), [3, 3, 'E3']);
  } finally {
    c.close();
  }
});

test('user stream: a token for another user does not resume the first one; no onuserreset falls back to onreset', { timeout: 5000 }, async () => {
  const f = fakeSockets();
  let token = jwt({ sub: 'alice' });
  const resets = [];
  const c = new WspushClient('ws://x/ws', {
    WebSocket: f.WebSocket, minDelay: 10, maxDelay: 20, token: () => token, onreset: (i) => resets.push(i),
  });
  try {
    await waitFor('a socket', () => f.sockets.length === 1, 1000);
    f.sockets[0].open();
    f.sockets[0].recv({ op: 'subscribed', positions: { '@alice': { epoch: 'E1', seq: 0 } } });
    f.sockets[0].recv({ user: 'alice', seq: 2, data: null }); // no onuser: tracked all the same
    assert.deepEqual(c.userPosition, { epoch: 'E1', seq: 2 });
    assert.equal(resets[0].reason, 'gap');
    assert.equal(resets[0].user, 'alice');
    token = jwt({ sub: 'bob' });
    f.sockets[0].drop(1006);
    await waitFor('a reconnect', () => f.sockets.length === 2, 1000);
    assert.equal(new URL(f.sockets[1].url).searchParams.get('since'), null);
    assert.equal(c.user, null);
    f.sockets[1].open();
    f.sockets[1].recv({ op: 'subscribed', positions: { '@bob': { epoch: 'B', seq: 5 } } });
    assert.equal(c.user, 'bob');
    assert.deepEqual(c.userPosition, { epoch: 'B', seq: 5 });
    assert.equal(resets.length, 1);
  } finally {
    c.close();
  }
  assert.equal(tokenSubject(jwt({ sub: 'x' })), 'x');
  assert.equal(tokenSubject(jwt({ topics: ['a'] })), null);
  assert.equal(tokenSubject('opaque'), undefined);
});

test('user stream (real server): onuser, each message once across a drop, 4001 closes for good', { timeout: 30_000 }, async () => {
  const auth = await startServer(['--jwt-secret', 'test-secret', '--history-size', '100']);
  const rec = recorder();
  const got = [];
  const resets = [];
  const states = [];
  const token = jwt({ sub: 'u-1', topics: ['t.user'], exp: Math.floor(Date.now() / 1000) + 3600 });
  const c = new WspushClient(auth.ws, {
    WebSocket: rec.WebSocket, minDelay: 50, maxDelay: 100, token,
    onuser: (d, m) => got.push([m.seq, d]), onuserreset: (i) => resets.push(i),
    onstate: (st, d) => states.push([st, d.code]),
  });
  try {
    await waitFor('the subscribed frame', () => c.user === 'u-1');
    assert.equal(c.userPosition.seq, 0);
    const first = await api(auth, '/api/publish', { user: 'u-1', data: { n: 1 } });
    assert.equal(first.recipients, 1);
    await api(auth, '/api/publish', { user: 'u-1', data: { n: 2 } });
    await waitFor('2 user messages', () => got.length === 2);

    rec.sockets[0].terminate();
    await waitFor('the client to notice the drop', () => c.state === 'connecting');
    for (const n of [3, 4]) await api(auth, '/api/publish', { user: 'u-1', data: { n } });
    await waitFor('a new connection', () => c.state === 'open');
    await api(auth, '/api/publish', { user: 'u-1', data: { n: 5 } });
    await waitFor('5 user messages', () => got.length >= 5);
    assert.deepEqual(got, [1, 2, 3, 4, 5].map((n) => [n, { n }]));
    assert.deepEqual(resets, []);
    const q = new URL(rec.sockets[1].url_).searchParams;
    assert.equal(q.get('since'), `@u-1:${first.epoch}:2`);
    assert.deepEqual(rec.sockets[1].received[0].recovered, { '@u-1': true });

    assert.deepEqual(await api(auth, '/api/disconnect', { user: 'u-1' }), { closed: 1 });
    await waitFor('the 4001 close', () => c.state === 'closed');
    assert.deepEqual(states.at(-1), ['closed', 4001]);
    assert.equal(rec.sockets.length, 2); // closed for good: no reconnect scheduled
    assert.equal((await api(auth, '/api/publish', { user: 'u-1', data: 6 })).recipients, 0);
  } finally {
    c.close();
    auth.stop();
  }
});

test('close codes: 1008 reconnects, 4000-4999 closes for good', { timeout: 5000 }, async () => {
  const f = fakeSockets();
  const states = [];
  const c = new WspushClient('ws://x/ws', {
    WebSocket: f.WebSocket, minDelay: 10, maxDelay: 20, onstate: (s, d) => states.push([s, d.code]),
  });
  try {
    await waitFor('a socket', () => f.sockets.length === 1, 1000);
    f.sockets[0].open();
    f.sockets[0].drop(1008, 'slow consumer');
    await waitFor('a reconnect', () => f.sockets.length === 2, 1000);
    f.sockets[1].open();
    f.sockets[1].drop(4001, 'go away');
    assert.equal(c.state, 'closed');
    await sleep(100);
    assert.equal(f.sockets.length, 2);
    assert.deepEqual(states, [['open', undefined], ['connecting', 1008], ['open', undefined], ['closed', 4001]]);
  } finally {
    c.close();
  }
});

test('backoff: full jitter between minDelay and the doubling cap', () => {
  assert.equal(backoffDelay(0, 100, 1000, () => 0), 100);
  assert.equal(backoffDelay(0, 100, 1000, () => 1), 100);
  assert.equal(backoffDelay(2, 100, 1000, () => 1), 400);
  assert.equal(backoffDelay(2, 100, 1000, () => 0.5), 250);
  assert.equal(backoffDelay(20, 100, 1000, () => 1), 1000);
  assert.equal(backoffDelay(20, 100, 1000, () => 0), 100);
  for (const code of [1000, 1001, 1006, 1008, 1011, 1012, 1013, 3000]) assert.ok(shouldReconnect(code), String(code));
  for (const code of [4000, 4500, 4999]) assert.ok(!shouldReconnect(code), String(code));
});

// permessage-deflate interop with Node's ws client.
//
//   INTEROP_PORT=13590 node node_client.js
//
// Every connection goes through a small TCP proxy that reads the frames
// on the wire both ways, so the test sees what ws cannot tell: which
// messages were compressed (RSV1) by whom, and how big they were.
// Prints "ok - ..." / "not ok - ..." lines, then "N passed, N failed".

'use strict';

const net = require('net');
const WebSocket = require('ws');

const port = Number(process.env.INTEROP_PORT || 13590);
const BASE = 'permessage-deflate; server_no_context_takeover; '
  + 'client_no_context_takeover';

let passed = 0;
let failed = 0;

function ok(cond, name, detail) {
  if (cond) {
    passed++;
    console.log(`ok - node ws: ${name}`);
  } else {
    failed++;
    console.log(`not ok - node ws: ${name}${detail ? ` (${detail})` : ''}`);
  }
  return cond;
}

// --- the wire ---------------------------------------------------------------

// Frames of one direction: {fin, rsv1, rsv, opcode, len}; the first bytes
// up to an empty line are the HTTP head (kept in .head).
class WireLog {
  constructor(http) {
    this.buf = Buffer.alloc(0);
    this.http = http;
    this.head = null;
    this.frames = [];
  }

  push(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);

    if (this.http && this.head === null) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.head = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
    }

    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let pos = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        pos = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        pos = 10;
      }
      if (b[1] & 0x80) pos += 4;
      if (b.length < pos + len) return;
      this.frames.push({
        fin: (b[0] >> 7) & 1,
        rsv1: (b[0] >> 6) & 1,
        rsv: (b[0] >> 4) & 7,
        opcode: b[0] & 0x0f,
        len,
      });
      this.buf = b.subarray(pos + len);
    }
  }

  // data frames from index "from" on
  data(from = 0) {
    return this.frames.slice(from).filter((f) => f.opcode < 8);
  }

  header(name) {
    if (this.head === null) return undefined;
    const re = new RegExp(`^${name}:\\s*(.*?)\\s*$`, 'im');
    const m = this.head.match(re);
    return m ? m[1] : undefined;
  }
}

// A proxy for one connection: resolves to {port, up, down, close}.
function proxy() {
  return new Promise((resolve) => {
    const up = new WireLog(true);
    const down = new WireLog(true);
    const sockets = [];
    const server = net.createServer((client) => {
      server.close();
      const upstream = net.connect(port, '127.0.0.1');
      sockets.push(client, upstream);
      client.on('data', (d) => { up.push(d); upstream.write(d); });
      upstream.on('data', (d) => { down.push(d); client.write(d); });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port, up, down,
      close: () => sockets.forEach((s) => s.destroy()),
    }));
  });
}

// --- clients ------------------------------------------------------------------

// open('/ws', {perMessageDeflate: ...}): {ws, wire, next(), params}
async function open(path, options = {}) {
  const wire = await proxy();
  const ws = new WebSocket(`ws://127.0.0.1:${wire.port}${path}`, options);
  const queue = [];
  const waiting = [];

  ws.on('message', (data, isBinary) => {
    const m = { data: data.toString(), isBinary };
    if (waiting.length) waiting.shift()(m);
    else queue.push(m);
  });

  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });

  const c = {
    ws,
    wire,
    params: ws._extensions['permessage-deflate']
      ? ws._extensions['permessage-deflate'].params : null,
    next(timeout = 5000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no message in time')),
                             timeout);
        waiting.push((m) => { clearTimeout(t); resolve(m); });
      });
    },
    async json(timeout) {
      return JSON.parse((await c.next(timeout)).data);
    },
    send(data, opts = {}) {
      return new Promise((resolve, reject) => {
        ws.send(data, opts, (err) => (err ? reject(err) : resolve()));
      });
    },
    async call(msg, opts) {
      await c.send(JSON.stringify(msg), opts);
      return c.json();
    },
    close() {
      ws.close(1000);
      return new Promise((resolve) => {
        ws.once('close', () => { wire.close(); resolve(); });
        setTimeout(() => { wire.close(); resolve(); }, 2000);
      });
    },
  };

  const welcome = await c.json();
  c.id = welcome.connectionId;
  if (welcome.type !== 'welcome') throw new Error('no welcome');
  return c;
}

// text of n bytes that deflate cannot shrink much: hex of a counter hash
function noise(n, seed = 'n') {
  const crypto = require('crypto');
  let s = '';
  for (let i = 0; s.length < n; i++) {
    s += crypto.createHash('sha256').update(`${seed}${i}`).digest('hex');
  }
  return s.slice(0, n);
}

// the last data frame the server sent
function lastDown(c) {
  const d = c.wire.down.data();
  return d[d.length - 1];
}

// --- the tests ------------------------------------------------------------------

async function negotiation() {
  // ws's default offer: "permessage-deflate; client_max_window_bits"
  const c = await open('/ws');
  ok(/^permessage-deflate; client_max_window_bits$/
       .test(c.wire.up.header('Sec-WebSocket-Extensions') || ''),
     'default offer', c.wire.up.header('Sec-WebSocket-Extensions'));
  ok(c.wire.down.header('Sec-WebSocket-Extensions') === BASE,
     'default offer: the answer', c.wire.down.header('Sec-WebSocket-Extensions'));
  ok(c.params && c.params.server_no_context_takeover === true
     && c.params.client_no_context_takeover === true,
     'ws accepted: no context takeover either way',
     JSON.stringify(c.params));
  await c.close();

  // every parameter offered
  const all = await open('/ws', {
    perMessageDeflate: {
      serverNoContextTakeover: true, clientNoContextTakeover: true,
      serverMaxWindowBits: 10, clientMaxWindowBits: 11,
    },
  });
  ok(all.wire.down.header('Sec-WebSocket-Extensions')
       === `${BASE}; server_max_window_bits=10; client_max_window_bits=11`,
     'all parameters: the answer',
     all.wire.down.header('Sec-WebSocket-Extensions'));
  ok(all.params && all.params.server_max_window_bits === 10
     && all.params.client_max_window_bits === 11,
     'all parameters: ws settled on 10 and 11 bits', JSON.stringify(all.params));
  const text = noise(3000);
  const echo = await all.call({ type: 'chat', text });
  ok(echo.text === text && lastDown(all).rsv1 === 1,
     'all parameters: a compressed echo, inflated with a 2^10 window');
  await all.close();

  // server_max_window_bits=8: declined, ws goes on without compression
  const eight = await open('/ws', {
    perMessageDeflate: { serverMaxWindowBits: 8 },
  });
  ok(eight.wire.down.header('Sec-WebSocket-Extensions') === undefined
     && eight.params === null,
     'server_max_window_bits=8: declined, no extension');
  const e8 = await eight.call({ type: 'chat', text: 'y'.repeat(2000) });
  ok(e8.text === 'y'.repeat(2000)
     && eight.wire.down.data().every((f) => f.rsv1 === 0)
     && eight.wire.up.data().every((f) => f.rsv1 === 0),
     'server_max_window_bits=8: plain messages both ways');
  await eight.close();

  // no offer at all
  const off = await open('/ws', { perMessageDeflate: false });
  ok(off.wire.down.header('Sec-WebSocket-Extensions') === undefined,
     'perMessageDeflate off: no extension');
  const eo = await off.call({ type: 'chat', text: 'z'.repeat(5000) });
  ok(eo.text === 'z'.repeat(5000) && lastDown(off).rsv1 === 0,
     'perMessageDeflate off: a long echo comes plain');
  await off.close();

  // ws_relay_deflate off on the location
  const loc = await open('/ws-nodeflate');
  ok(loc.wire.down.header('Sec-WebSocket-Extensions') === undefined
     && loc.params === null,
     'ws_relay_deflate off: the offer is declined');
  await loc.close();
}

async function sizes() {
  // threshold 0: ws compresses every message it sends
  const c = await open('/ws', { perMessageDeflate: { threshold: 0 } });
  await c.send(JSON.stringify({ type: 'chat', text: 'x' }));
  const fixed = Buffer.byteLength((await c.next()).data) - 1;

  for (const n of [10, 255 - fixed, 256 - fixed, 1000, 20000, 200000,
                   900000]) {
    const text = n > 1000 ? noise(n) : 'x'.repeat(n);
    const upFrom = c.wire.up.frames.length;
    const echo = await c.call({ type: 'chat', text });
    const up = c.wire.up.data(upFrom)[0];
    const down = lastDown(c);
    const echoLen = fixed + n;
    ok(echo.text === text, `compressed chat of ${n} bytes: echoed`);
    ok(up && up.rsv1 === 1, `compressed chat of ${n} bytes: sent with RSV1`);
    ok(down.rsv1 === (echoLen >= 256 ? 1 : 0),
       `echo of ${echoLen} bytes: ${echoLen >= 256 ? 'compressed' : 'plain'}`,
       `rsv1 ${down.rsv1}`);
  }

  // the same connection, messages ws leaves uncompressed
  for (const n of [10, 5000, 100000]) {
    const text = noise(n, 'u');
    const upFrom = c.wire.up.frames.length;
    const echo = await c.call({ type: 'chat', text }, { compress: false });
    const up = c.wire.up.data(upFrom)[0];
    ok(echo.text === text && up.rsv1 === 0,
       `uncompressed chat of ${n} bytes on a deflate connection: echoed`);
  }

  // binary, compressed
  await c.send(Buffer.from('{"type":"ping"}'), { binary: true });
  const pong = await c.json();
  const bin = c.wire.up.data().pop();
  ok(pong.type === 'pong' && bin.opcode === 2 && bin.rsv1 === 1,
     'a compressed binary message: pong');
  await c.close();
}

async function fragments() {
  const c = await open('/ws', { perMessageDeflate: { threshold: 0 } });
  const text = noise(30000);
  const json = JSON.stringify({ type: 'chat', text });
  const upFrom = c.wire.up.frames.length;

  // ws compresses the fragments of one message in one deflate stream
  const cuts = [0, 7, 10000, 10001, 25000, json.length];
  for (let i = 0; i + 1 < cuts.length; i++) {
    await c.send(json.slice(cuts[i], cuts[i + 1]),
                 { fin: i + 2 === cuts.length });
  }
  const echo = await c.json();
  const frames = c.wire.up.data(upFrom);
  ok(echo.text === text, 'a compressed message in 5 fragments: echoed');
  ok(frames.length === 5 && frames[0].rsv1 === 1 && frames[0].opcode === 1
     && frames.slice(1).every((f) => f.rsv1 === 0 && f.opcode === 0),
     'RSV1 on the first fragment only',
     JSON.stringify(frames.map((f) => [f.opcode, f.rsv1, f.len])));
  ok(lastDown(c).rsv1 === 1, 'the echo comes back compressed');

  // a ping between fragments
  await c.send('{"type":"ch', { fin: false });
  c.ws.ping('mid');
  const pong = new Promise((resolve) => c.ws.once('pong', (d) => resolve(d)));
  await c.send(`at","text":"${'w'.repeat(500)}"}`, { fin: true });
  ok((await pong).toString() === 'mid', 'a ping between fragments: pong');
  ok((await c.json()).text === 'w'.repeat(500),
     'a fragmented compressed message around a ping: echoed');
  await c.close();
}

async function contextTakeover() {
  const c = await open('/ws', { perMessageDeflate: { threshold: 0 } });
  const text = noise(4000);
  const up = [];
  const down = [];

  for (let i = 0; i < 3; i++) {
    const from = c.wire.up.frames.length;
    const echo = await c.call({ type: 'chat', text });
    ok(echo.text === text, `repeat ${i + 1}: echoed`);
    up.push(c.wire.up.data(from)[0].len);
    down.push(lastDown(c).len);
  }

  // with context takeover a repeat takes a few dozen bytes
  ok(up.every((n) => n > up[0] - 10),
     'ws compresses each message alone (client_no_context_takeover)',
     up.join(' '));
  ok(down.every((n) => n > down[0] - 10),
     'the server compresses each message alone (server_no_context_takeover)',
     down.join(' '));
  await c.close();
}

async function fanOut() {
  const a = await open('/ws');
  const b = await open('/ws', { perMessageDeflate: { serverMaxWindowBits: 10 } });
  const plain = await open('/ws', { perMessageDeflate: false });
  const sender = await open('/ws');

  for (const c of [a, b, plain]) {
    const r = await c.call({ type: 'register', userId: 'node-u1' });
    ok(r.status === 'success', 'register node-u1');
  }
  await sender.call({ type: 'register', userId: 'node-u2' });

  const data = { text: noise(6000), list: Array.from({ length: 200 }, (_, i) => i) };
  const res = await sender.call({
    type: 'notification', targetUserId: 'node-u1', action: 'big', data,
  });
  ok(res.type === 'notification_result' && res.connections === 3,
     'notification_result: 3 connections', JSON.stringify(res));

  for (const [c, name, compressed] of [[a, '15-bit', 1], [b, '10-bit', 1],
                                       [plain, 'plain', 0]]) {
    const n = await c.json();
    ok(n.type === 'notification' && n.sender === 'node-u2'
       && JSON.stringify(n.data) === JSON.stringify(data),
       `fan-out: the ${name} connection gets the notification`);
    ok(lastDown(c).rsv1 === compressed,
       `fan-out: ${compressed ? 'compressed' : 'plain'} for the ${name} connection`);
  }

  const chat = noise(2000, 'c');
  await sender.call({ type: 'chat', targetUserId: 'node-u1', text: chat });
  for (const c of [a, b, plain]) {
    ok((await c.json()).text === chat, 'fan-out: a chat reaches each connection');
  }

  await Promise.all([a, b, plain, sender].map((c) => c.close()));
}

(async () => {
  for (const t of [negotiation, sizes, fragments, contextTakeover, fanOut]) {
    try {
      await t();
    } catch (e) {
      ok(false, `${t.name} ran to the end`, e.stack || String(e));
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();

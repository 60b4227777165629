// The client library's test scenarios, run by client.test.mjs in Node and
// in headless Chromium against nginx with the example configuration
// (history on, two workers).  Each scenario is `async (lib, env, t)`:
//
//   lib  the client module (connect, compareIds, RelayError)
//   env  url (the relay), prefix (for user ids), WebSocket (the class to
//        use), reload() (nginx -s reload), kill(socket) (Node only: the
//        TCP connection is cut)
//   t    t.ok(condition, name, detail): one check
//
// This module imports nothing: the browser loads it as it is.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A message over ws_relay_max_message_size (1m): the server closes with 1009.
function overflow(socket) {
  socket.send('x'.repeat(1024 * 1024 + 1));
}

// until fn() is true, `ms` at most; fn's last value
async function until(fn, ms = 10000) {
  const end = Date.now() + ms;
  let v = fn();
  while (!v && Date.now() < end) {
    await sleep(20);
    v = fn();
  }
  return v;
}

// The messages a client gets: { type, tag, id }, oldest first.
function collect(client) {
  const got = [];
  client.on('message', (m) => got.push({
    type: m.type, id: m.id, sender: m.sender,
    tag: String(m.type === 'chat' ? m.text : m.data && m.data.tag),
  }));
  return got;
}

// `from` sends to `to` every `every` ms, a chat then a notification, each
// tagged "<name>-<n>", until stop(); `acked` gets the ids of the replies.
function keepSending(from, to, name, every = 15) {
  const s = { sent: 0, acked: [], failed: 0, stopped: false, pending: [] };
  s.done = (async () => {
    while (!s.stopped) {
      const tag = `${name}-${++s.sent}`;
      const p = s.sent % 2 ? from.chat(to, tag) : from.notify(to, 'tagged', { tag });
      s.pending.push(p.then((r) => { if (r.id) s.acked.push(r.id); },
                            () => { s.failed++; }));
      await sleep(every);
    }
    await Promise.all(s.pending);
  })();
  s.stop = () => { s.stopped = true; return s.done; };
  return s;
}

// What is wrong with `got`: a message or an id twice, ids or tags out of
// order, an acked id missing.
function problems(lib, got, acked, name) {
  const out = [];
  const mine = got.filter((m) => m.tag.startsWith(`${name}-`));
  const n = (m) => Number(m.tag.slice(name.length + 1));
  for (let i = 1; i < mine.length; i++) {
    if (!mine[i].id || !mine[i - 1].id || lib.compareIds(mine[i - 1].id, mine[i].id) >= 0) {
      out.push(`ids not increasing: ${mine[i - 1].id} then ${mine[i].id}`);
      break;
    }
    if (n(mine[i - 1]) >= n(mine[i])) {
      out.push(`out of order or twice: ${mine[i - 1].tag} then ${mine[i].tag}`);
      break;
    }
  }
  const ids = new Set(mine.map((m) => m.id));
  const lost = acked.filter((id) => !ids.has(id));
  if (lost.length) out.push(`stored but not received: ${lost.slice(0, 5).join(', ')}` +
                            (lost.length > 5 ? ` and ${lost.length - 5} more` : ''));
  return out;
}

// A client whose sockets are in its `sockets`, newest last.
function open(lib, env, userId, options = {}) {
  const sockets = [];
  class Recording extends (options.WebSocket || env.WebSocket) {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const client = lib.connect(env.url, { ...options, WebSocket: Recording, userId });
  client.sockets = sockets;
  return client;
}

async function closeAll(...clients) {
  await Promise.all(clients.map((c) => c.close()));
}

export const scenarios = {
  async 'ids compare as two integers'(lib, env, t) {
    const c = lib.compareIds;
    t.ok(c('1700000000000-10', '1700000000000-9') > 0 && c('9-0', '10-0') < 0 &&
         c('5-5', '5-5') === 0 && c('0', '1-0') < 0 && c('7', '7-0') === 0 &&
         c('123456789012345-1', '123456789012344-999999999999999') > 0,
         'compareIds: <ms>-10 after <ms>-9, 10-0 after 9-0, "0" first');
  },

  async 'connect, register, chat, notify, ping'(lib, env, t) {
    const A = `${env.prefix}alice`;
    const B = `${env.prefix}bob`;
    const opened = [];
    const alice = open(lib, env, A);
    const bob = open(lib, env, B);
    bob.on('open', (ev) => opened.push(ev));
    const bobGot = collect(bob);
    const chats = [];
    const notes = [];
    bob.on('chat', (m) => chats.push(m));
    bob.on('notification', (m) => notes.push(m));
    await Promise.all([alice.ready(), bob.ready()]);
    t.ok(opened.length === 1 && opened[0].userId === B && Number.isInteger(opened[0].processId) &&
         typeof opened[0].connectionId === 'string' && bob.state === 'open',
         'open: registered, with the connection id and worker', JSON.stringify(opened));

    const pong = await alice.ping();
    t.ok(pong.type === 'pong' && typeof pong.timestamp === 'number', 'ping() resolves with the pong',
         JSON.stringify(pong));

    const r = await alice.chat(B, 'hello bob');
    await until(() => chats.length === 1);
    t.ok(r.type === 'chat_delivered' && r.delivered === true && r.queued === false &&
         r.targetUserId === B && /^\d+-\d+$/.test(r.id),
         'chat() resolves with chat_delivered: delivered, not queued, its id', JSON.stringify(r));
    t.ok(chats.length === 1 && chats[0].text === 'hello bob' && chats[0].sender === A &&
         chats[0].id === r.id, 'the target gets the chat once, with the same id',
         JSON.stringify(chats));

    const n = await alice.notify(B, 'tagged', { tag: 'note-1', n: 1 });
    await until(() => notes.length === 1);
    t.ok(n.type === 'notification_result' && n.delivered === true && n.connections === 1 &&
         /^\d+-\d+$/.test(n.id), 'notify() resolves with notification_result, 1 connection',
         JSON.stringify(n));
    t.ok(notes.length === 1 && notes[0].action === 'tagged' && notes[0].data.n === 1 &&
         notes[0].sender === A && bobGot.length === 2,
         'the target gets the notification; "message" saw both', JSON.stringify(notes));

    // 30 requests at once, pings among them: each gets its own reply
    const all = [];
    for (let i = 1; i <= 30; i++) {
      all.push(i % 3 === 0 ? alice.ping()
        : i % 3 === 1 ? alice.chat(B, `burst-${i}`) : alice.notify(B, 'tagged', { tag: `burst-${i}` }));
    }
    const replies = await Promise.all(all);
    const kinds = replies.map((x, i) => (i + 1) % 3 === 0 ? x.type === 'pong'
      : x.type === ((i + 1) % 3 === 1 ? 'chat_delivered' : 'notification_result'));
    const ids = replies.filter((x) => x.id).map((x) => x.id);
    const increasing = ids.every((id, i) => i === 0 || lib.compareIds(ids[i - 1], id) < 0);
    t.ok(kinds.every(Boolean) && ids.length === 20 && increasing,
         '30 requests at once: each resolves with its own reply, ids in request order',
         JSON.stringify(replies.map((x) => x.type + (x.id ? ' ' + x.id : ''))));
    await until(() => bobGot.length === 22);
    t.ok(problems(lib, bobGot, ids, 'burst').length === 0 && bobGot.length === 22,
         'the target gets the 20 in order, once', problems(lib, bobGot, ids, 'burst').join('; '));

    let refused = null;
    await alice.chat('', 'x').catch((e) => { refused = e; });
    t.ok(refused instanceof TypeError, 'chat() to an empty user id is refused before sending',
         String(refused));
    await closeAll(alice, bob);
  },

  async 'an error reply goes to its request, the others get theirs'(lib, env, t) {
    const A = `${env.prefix}erra`;
    const B = `${env.prefix}errb`;
    // the notification tagged "spoil" leaves without its target
    class Spoiling extends env.WebSocket {
      send(data) {
        super.send(String(data).includes('"spoil"')
          ? String(data).replace(/"targetUserId":"[^"]*"/, '"targetUserId":null') : data);
      }
    }
    const alice = open(lib, env, A, { WebSocket: Spoiling });
    const bob = open(lib, env, B);
    const errors = [];
    alice.on('error', (e) => errors.push(e));
    await Promise.all([alice.ready(), bob.ready()]);
    const results = await Promise.allSettled([
      alice.chat(B, 'before'), alice.notify(B, 'spoil', {}), alice.ping(),
      alice.notify(B, 'after', {}), alice.chat(B, 'last')]);
    const [before, spoiled, pong, after, last] = results;
    t.ok(spoiled.status === 'rejected' && spoiled.reason instanceof lib.RelayError &&
         spoiled.reason.code === 'server' &&
         spoiled.reason.message === 'Missing targetUserId in notification message',
         'the request the server refused is rejected with its error',
         JSON.stringify(spoiled.reason && spoiled.reason.message));
    t.ok(before.value && before.value.type === 'chat_delivered' && pong.value &&
         pong.value.type === 'pong' && after.value && after.value.type === 'notification_result' &&
         last.value && last.value.type === 'chat_delivered' && errors.length === 0,
         'the requests around it get their own replies, no "error" event',
         JSON.stringify(results.map((x) => x.status + ' ' + (x.value ? x.value.type : x.reason))));
    await closeAll(alice, bob);
  },

  async 'a user who is offline: queued, with an id'(lib, env, t) {
    const A = `${env.prefix}qa`;
    const alice = open(lib, env, A);
    await alice.ready();
    const r = await alice.chat(`${env.prefix}nobody`, 'anyone?');
    const n = await alice.notify(`${env.prefix}nobody`, 'tagged', { tag: 'x' });
    t.ok(r.delivered === false && r.queued === true && /^\d+-\d+$/.test(r.id),
         'chat(): delivered false, queued true, an id', JSON.stringify(r));
    t.ok(n.delivered === false && n.connections === 0 && n.queued === true &&
         lib.compareIds(n.id, r.id) > 0, 'notify(): 0 connections, queued true, the next id',
         JSON.stringify(n));
    // the user comes, asks for what is kept: both, in order
    const later = open(lib, env, `${env.prefix}nobody`, { since: '0' });
    const got = collect(later);
    const regs = [];
    later.on('register', (ev) => regs.push(ev));
    await later.ready();
    await until(() => got.length === 2);
    t.ok(got.map((m) => m.id).join() === `${r.id},${n.id}` && regs.length === 1 &&
         regs[0].since === '0' && regs[0].recovered === true && later.recovered === true,
         'connecting with since "0" brings both, recovered: true',
         JSON.stringify({ got, regs }));
    await closeAll(alice, later);
  },

  async 'a dropped connection: reconnects and resumes, nothing missed or twice'(lib, env, t) {
    for (const how of env.kill ? ['killed', 'closed by the server'] : ['closed by the server']) {
      const A = `${env.prefix}da-${how.length}`;
      const B = `${env.prefix}db-${how.length}`;
      const alice = open(lib, env, A);
      const bob = open(lib, env, B);
      const got = collect(bob);
      const regs = [];
      const closes = [];
      bob.on('register', (ev) => regs.push(ev));
      bob.on('close', (ev) => closes.push({ ...ev, lastId: bob.lastId }));
      await Promise.all([alice.ready(), bob.ready()]);
      const sending = keepSending(alice, B, 'drop');
      await until(() => got.length >= 10);
      const conn = bob.connectionId;
      (how === 'killed' ? env.kill : overflow)(bob.sockets.at(-1));
      await until(() => bob.state === 'open' && bob.connectionId !== conn);
      const after = got.length;
      await until(() => got.length >= after + 10);
      await sending.stop();
      await until(() => problems(lib, got, sending.acked, 'drop').length === 0);
      const p = problems(lib, got, sending.acked, 'drop');
      t.ok(p.length === 0 && sending.acked.length > 20,
           `${how}: the messages sent meanwhile arrive, in order, once`,
           `${p.join('; ')} (${sending.sent} sent, ${sending.acked.length} stored, ` +
           `${got.length} received)`);
      t.ok(closes.length === 1 && closes[0].delay !== null && regs.length === 2 &&
           regs[1].since === closes[0].lastId && /^\d+-\d+$/.test(regs[1].since) &&
           regs[1].recovered === true,
           `${how}: one close, a reconnect by itself, register since the last id: recovered`,
           JSON.stringify({ closes, regs }));
      await closeAll(alice, bob);
    }
  },

  async 'a message that arrives twice is emitted once'(lib, env, t) {
    const A = `${env.prefix}ca`;
    const B = `${env.prefix}cb`;
    class Doubling extends env.WebSocket {
      set onmessage(fn) {
        super.onmessage = (ev) => {
          fn(ev);
          if (/"id":"/.test(String(ev.data))) fn(ev);
        };
      }

      get onmessage() {
        return super.onmessage;
      }
    }
    const alice = open(lib, env, A);
    const bob = open(lib, env, B, { WebSocket: Doubling });
    const got = collect(bob);
    await Promise.all([alice.ready(), bob.ready()]);
    const acked = [];
    for (let i = 1; i <= 5; i++) {
      acked.push((await (i % 2 ? alice.chat(B, `twice-${i}`)
        : alice.notify(B, 'tagged', { tag: `twice-${i}` }))).id);
    }
    await until(() => got.length >= 5);
    await sleep(300);
    const p = problems(lib, got, acked, 'twice');
    t.ok(got.length === 5 && p.length === 0, 'each copy after the first is dropped by its id',
         `${got.length} emitted; ${p.join('; ')}`);
    await closeAll(alice, bob);
  },

  async 'nginx -s reload while a peer sends: nothing missed or twice, in order'(lib, env, t) {
    const A = `${env.prefix}ra`;
    const B = `${env.prefix}rb`;
    const alice = open(lib, env, A);
    const bob = open(lib, env, B);
    const idle = [];
    for (let i = 0; i < 6; i++) idle.push(open(lib, env, `${env.prefix}idle-${i}`));
    const got = collect(bob);
    const closes = new Map();
    for (const c of [alice, bob, ...idle]) {
      closes.set(c, []);
      c.on('close', (ev) => closes.get(c).push(ev));
    }
    const regs = [];
    bob.on('register', (ev) => regs.push(ev));
    await Promise.all([alice, bob, ...idle].map((c) => c.ready()));
    const pids = new Map([alice, bob, ...idle].map((c) => [c, c.processId]));
    const sending = keepSending(alice, B, 'reload', 25);
    await until(() => got.length >= 10);
    await env.reload();
    const back = await until(() => [alice, bob, ...idle].every((c) =>
      c.state === 'open' && closes.get(c).length > 0), 40000);
    await sleep(500);
    await sending.stop();
    await until(() => problems(lib, got, sending.acked, 'reload').length === 0);
    const p = problems(lib, got, sending.acked, 'reload');
    t.ok(back && p.length === 0 && sending.acked.length > 50,
         'the peer kept sending across the reload: every stored message arrives, in order, once',
         `${p.join('; ')} (${sending.sent} sent, ${sending.acked.length} stored, ` +
         `${sending.failed} without a reply, ${got.length} received)`);
    const all = [...closes.values()].map((cs) => cs[0]).filter(Boolean);
    const moved = [alice, bob, ...idle].every((c) => c.processId !== pids.get(c));
    const delays = all.map((ev) => ev.delay);
    t.ok(back && moved && all.every((ev) => ev.code === 1001) &&
         delays.every((d) => d >= 0 && d <= 500) && new Set(delays).size > 1,
         'every client got 1001 and came back by itself to a new worker, after its own delay',
         `codes ${all.map((ev) => ev.code)}, delays ${delays}, moved ${moved}`);
    const last = regs[regs.length - 1];
    t.ok(regs.length === 2 && last.recovered === true && /^\d+-\d+$/.test(last.since),
         'the receiver resumed: register since its last id, recovered: true', JSON.stringify(regs));
    await closeAll(alice, bob, ...idle);
  },

  async 'recovered: false once the history no longer reaches back'(lib, env, t) {
    const A = `${env.prefix}ta`;
    const B = `${env.prefix}tb`;
    const alice = open(lib, env, A);
    // a fixed, long wait before its reconnect
    const bob = open(lib, env, B, { reconnect: { initialDelay: 3000, jitter: 0 } });
    const got = collect(bob);
    const regs = [];
    bob.on('register', (ev) => regs.push(ev));
    await Promise.all([alice.ready(), bob.ready()]);
    await alice.chat(B, 'trim-0');
    await until(() => got.length === 1);
    const conn = bob.connectionId;
    overflow(bob.sockets.at(-1));
    await until(() => bob.state === 'waiting');
    // 120 while it is away: the history (size=100) keeps the last 100
    const replies = await Promise.all(Array.from({ length: 120 },
      (_, i) => alice.chat(B, `trim-${i + 1}`)));
    const waited = bob.state === 'waiting';
    await until(() => bob.state === 'open' && bob.connectionId !== conn, 10000);
    await until(() => got.length >= 101);
    await sleep(300);
    const tags = got.slice(1).map((m) => m.tag);
    t.ok(waited && replies.every((r) => r.queued === true) && regs.length === 2 &&
         regs[1].since === got[0].id && regs[1].recovered === false && bob.recovered === false,
         'register since an id trimmed away: recovered false, in the event and on the client',
         JSON.stringify({ waited, regs }));
    t.ok(tags.length === 100 && tags[0] === 'trim-21' && tags[99] === 'trim-120' &&
         problems(lib, got.slice(1), [], 'trim').length === 0,
         'what is kept still arrives: the last 100, in order',
         `${tags.length}: ${tags[0]} .. ${tags[tags.length - 1]}`);
    await closeAll(alice, bob);
  },

  async 'close() stops reconnecting'(lib, env, t) {
    const U = `${env.prefix}closer`;
    const c = open(lib, env, U);
    const closes = [];
    c.on('close', (ev) => closes.push(ev));
    await c.ready();
    const pinging = c.ping().then(() => 'resolved', (e) => e.code);
    await c.close();
    const after = await c.chat(U, 'x').then(() => 'sent', (e) => e.code);
    const ready = await c.ready().then(() => 'ready', (e) => e.code);
    await sleep(1500);
    t.ok(c.state === 'closed' && c.sockets.length === 1 && closes.length === 1 && closes[0].code === 1000 &&
         closes[0].delay === null && after === 'closed' && ready === 'closed' &&
         ['resolved', 'closed'].includes(await pinging),
         'close(): one close event, no reconnect; requests and ready() are refused after it',
         JSON.stringify({ state: c.state, sockets: c.sockets.length, closes, after, ready }));

    // closed while it waits to reconnect
    const d = open(lib, env, U, { reconnect: { initialDelay: 1000, jitter: 0 } });
    await d.ready();
    overflow(d.sockets.at(-1));
    await until(() => d.state === 'waiting');
    const queued = d.chat(U, 'never').then(() => 'sent', (e) => e.code);
    await d.close();
    await sleep(1500);
    t.ok(d.state === 'closed' && d.sockets.length === 1 && await queued === 'closed',
         'close() while waiting to reconnect: no reconnect, the request waiting for it is refused',
         JSON.stringify({ state: d.state, sockets: d.sockets.length, queued: await queued }));
  },
};

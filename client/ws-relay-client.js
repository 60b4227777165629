// ws-relay-client: a client for ngx_ws_relay_module's WebSocket protocol,
// for browsers and Node 18 or later.  One ES module, no dependencies, no
// build step.
//
//   import { connect } from './ws-relay-client.js';
//   const relay = connect('wss://relay.example.com/', { userId: 'alice' });
//   relay.on('chat', (msg) => console.log(msg.sender, msg.text));
//   const reply = await relay.chat('bob', 'hi');   // { delivered, queued, id }
//
// It registers its user on every connection, reconnects after any close
// but close() (exponential backoff, jittered so that the clients of a
// reloaded server do not come back in step) and, with the server's
// ws_relay_history, resumes after the last message id it saw: a message
// reaches the listeners once, in order, across reconnects.  Replies are
// matched to requests: chat() and notify() resolve with the server's
// chat_delivered and notification_result, ping() with the pong.

// a message id, as the server takes it in "since": at most 15 digits a part
const ID = /^(\d{1,15})(?:-(\d{1,15}))?$/;
const REPLIES = new Set(['welcome', 'register', 'pong', 'chat_delivered',
                         'notification_result', 'error']);
const DELIVERIES = new Set(['chat', 'notification']);
const MAX_USER_ID = 256;        // bytes of UTF-8, as the server allows

// Server errors that can only be about one kind of request; any other
// (rate limit, internal error) may be about any.
const ERROR_KINDS = [
  [/^(Missing userId|userId |Cannot register|since )/, ['register']],
  [/^targetUserId /, ['chat', 'notification']],
  [/^Missing targetUserId/, ['notification']],
];

export class RelayError extends Error {
  // code: 'closed' (the connection or the client closed before a reply),
  // 'timeout', 'server' (an error reply; `reply` holds it), 'socket'
  constructor(message, code, reply) {
    super(message);
    this.name = 'RelayError';
    this.code = code;
    if (reply !== undefined) this.reply = reply;
  }
}

// Message ids "<ms>-<seq>" (or "<ms>", "0"): <0, 0, >0 as a is before, the
// same as, after b.  Two integers each (of at most 15 digits, exact as
// numbers): "<ms>-10" is after "<ms>-9".
export function compareIds(a, b) {
  const x = ID.exec(a);
  const y = ID.exec(b);
  if (!x || !y) throw new TypeError(`not a message id: ${x ? b : a}`);
  return Number(x[1]) - Number(y[1]) || Number(x[2] || 0) - Number(y[2] || 0);
}

export function connect(url, options) {
  return new RelayClient(url, options);
}

export class RelayClient {
  #WebSocket;
  #reconnect;
  #timeout;
  #ws = null;
  #state = 'connecting';        // connecting | open | waiting | closed
  #attempt = 0;                 // reconnects since the last open
  #timer = null;                // the reconnect's
  #listeners = new Map();
  #waiters = [];                // ready() calls
  #outbox = [];                 // requests waiting for the connection
  #pending = [];                // requests sent, in order, waiting for replies
  #seq = 0;
  #answered = 0;                // the newest request a reply came for
  #resumable = false;           // a registration of userId succeeded
  #lastRegister = null;
  #online = () => this.#state === 'waiting' && this.#open();

  constructor(url, options = {}) {
    this.url = url;
    this.userId = options.userId ?? null;
    this.lastId = null;
    this.recovered = undefined;
    this.connectionId = null;
    this.processId = null;
    if (this.userId !== null) checkUserId(this.userId, 'userId');
    if (options.since !== undefined) this.lastId = checkSince(options.since);
    this.#WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new TypeError('no WebSocket here: pass one as options.WebSocket ' +
                          '(in Node before 22, the "ws" package)');
    }
    const r = options.reconnect ?? {};
    this.#reconnect = r === false ? null : {
      initialDelay: r.initialDelay ?? 500,
      maxDelay: r.maxDelay ?? 15000,
      jitter: r.jitter ?? 1,
    };
    this.#timeout = options.timeout ?? 10000;
    globalThis.addEventListener?.('online', this.#online);
    this.#open();
  }

  get state() {
    return this.#state;
  }

  // --- events ----------------------------------------------------------------

  on(type, listener) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  once(type, listener) {
    const off = this.on(type, (ev) => {
      off();
      listener(ev);
    });
    return off;
  }

  // A listener that throws does not stop the client; its error is reported
  // as the JavaScript environment reports uncaught errors.
  #emit(type, ev) {
    for (const listener of [...(this.#listeners.get(type) || [])]) {
      try {
        listener(ev);
      } catch (e) {
        setTimeout(() => { throw e; });
      }
    }
  }

  // --- requests --------------------------------------------------------------

  // Resolves once the client is connected and registered (at once when it
  // is); rejects when it is closed.
  ready() {
    if (this.#state === 'open') return Promise.resolve(this);
    if (this.#state === 'closed') return Promise.reject(closed());
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  // Registers as userId on this connection and every later one; since:
  // the id to resume after ("0": every message the server keeps).
  // Resolves with { userId, since, recovered, timestamp }.
  async register(userId, { since } = {}) {
    checkUserId(userId, 'userId');
    if (since !== undefined) checkSince(since);
    if (this.#state !== 'open') {
      // the connection registers as userId as it opens
      if (userId !== this.userId) {
        this.userId = userId;
        this.lastId = null;
        this.#resumable = false;
      }
      if (since !== undefined) this.lastId = since;
      await this.ready();
      if (this.#lastRegister?.userId === userId) return this.#lastRegister;
    }
    return this.#request({ type: 'register', userId, since });
  }

  chat(target, text) {
    return this.#request({ type: 'chat', targetUserId: target, text }, target);
  }

  notify(target, action, data) {
    return this.#request({ type: 'notification', targetUserId: target, action, data },
                         target);
  }

  ping() {
    return this.#request({ type: 'ping' });
  }

  // Closes the connection and stops reconnecting; requests without a reply
  // are rejected.  Resolves when the socket is closed.
  close(code = 1000, reason = '') {
    if (this.#state === 'closed') return Promise.resolve();
    this.#shutdown();
    const ws = this.#ws;
    if (!ws) {
      this.#emit('close', { code, reason, delay: null, attempt: 0 });
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      ws.addEventListener('close', () => resolve());
      ws.close(code, reason);
    });
  }

  #shutdown() {
    const error = closed('the client was closed');
    this.#state = 'closed';
    clearTimeout(this.#timer);
    globalThis.removeEventListener?.('online', this.#online);
    this.#failAll(error, true);
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  #request(msg, target) {
    if (target !== undefined) {
      try {
        checkUserId(target, 'target');
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.#state === 'closed') return Promise.reject(closed());
    return new Promise((resolve, reject) => {
      const req = { msg, resolve, reject, seq: 0, timer: null, done: false };
      if (this.#timeout > 0) {
        req.timer = setTimeout(() => {
          req.done = true;
          // unsent: forgotten; sent: it stays to take its late reply
          const i = this.#outbox.indexOf(req);
          if (i >= 0) this.#outbox.splice(i, 1);
          reject(new RelayError(`no reply to ${msg.type} in ${this.#timeout} ms`, 'timeout'));
        }, this.#timeout);
      }
      if (this.#state === 'open') this.#send(req);
      else this.#outbox.push(req);
    });
  }

  #send(req) {
    req.seq = ++this.#seq;
    this.#pending.push(req);
    this.#ws.send(JSON.stringify(req.msg));
  }

  #settle(req, reply, error) {
    this.#pending.splice(this.#pending.indexOf(req), 1);
    this.#answered = Math.max(this.#answered, req.seq);
    clearTimeout(req.timer);
    if (req.done) return;
    req.done = true;
    if (error) req.reject(error);
    else req.resolve(reply);
  }

  // requests in flight fail: all (close()), or those sent (a lost connection)
  #failAll(error, all) {
    for (const req of this.#pending.splice(0).concat(all ? this.#outbox.splice(0) : [])) {
      clearTimeout(req.timer);
      if (!req.done) req.reject(error);
      req.done = true;
    }
  }

  // --- the connection -------------------------------------------------------

  #open() {
    clearTimeout(this.#timer);
    this.#state = 'connecting';
    this.connectionId = null;
    this.processId = null;
    this.#emit('connecting', { url: this.url, attempt: this.#attempt });
    const ws = new this.#WebSocket(this.url);
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => this.#ws === ws && this.#onMessage(ev.data);
    ws.onerror = () => this.#ws === ws && this.#state !== 'closed' &&
      this.#emit('error', new RelayError('WebSocket error', 'socket'));
    ws.onclose = (ev) => this.#ws === ws && this.#onClose(ev.code, ev.reason);
  }

  #onClose(code, reason) {
    this.#ws = null;
    this.#lastRegister = null;
    this.#failAll(closed(`the connection closed (${code}) before the reply`), false);
    if (this.#state !== 'closed' && !this.#reconnect) this.#shutdown();
    if (this.#state === 'closed') {
      this.#emit('close', { code, reason, delay: null, attempt: 0 });
      return;
    }
    // full jitter (1): anywhere up to the doubled delay; 0.5: half to all
    const { initialDelay, maxDelay, jitter } = this.#reconnect;
    const ceiling = Math.min(maxDelay, initialDelay * 2 ** Math.min(this.#attempt, 30));
    const delay = Math.round(ceiling * (1 - jitter * Math.random()));
    this.#attempt++;
    this.#state = 'waiting';
    this.#timer = setTimeout(() => this.#open(), delay);
    this.#emit('close', { code, reason, delay, attempt: this.#attempt });
  }

  #onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch (e) {
      msg = null;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      this.#emit('error', new RelayError('not a JSON object from the server', 'socket'));
      return;
    }
    if (!REPLIES.has(msg.type)) {
      this.#delivered(msg);
    } else if (msg.type === 'welcome') {
      this.#welcome(msg);
    } else if (msg.type === 'error') {
      this.#error(msg);
    } else {
      this.#reply(msg);
    }
  }

  // Replies come in the order of their requests, each kind in its own
  // order (a pong may pass the reply to a chat that waits for the other
  // workers): a reply is for the oldest request of its kind, and one to a
  // chat or notification also tells that those before it got none.
  #reply(msg) {
    const kind = { pong: 'ping', chat_delivered: 'chat',
                   notification_result: 'notification' }[msg.type] || msg.type;
    const req = this.#pending.find((r) => r.msg.type === kind &&
      (r.msg.targetUserId === undefined || r.msg.targetUserId === msg.targetUserId));
    if (req && req.msg.targetUserId !== undefined) {
      for (const r of this.#pending.filter((p) => p.seq < req.seq && DELIVERIES.has(p.msg.type))) {
        this.#settle(r, null, new RelayError(`no reply to ${r.msg.type}`, 'server'));
      }
    }
    const reply = kind === 'register' ? this.#registered(msg, req) : msg;
    if (req) this.#settle(req, reply);
    if (kind === 'register' && this.#state === 'connecting') this.#ready(reply);
  }

  #welcome(msg) {
    this.connectionId = msg.connectionId;
    this.processId = msg.processId;
    this.#emit('welcome', msg);
    // with ws_relay_user_id the server names the user; registering as it
    // resumes
    if (this.userId === null && typeof msg.userId === 'string') this.userId = msg.userId;
    if (this.userId === null) {
      this.#ready(null);
      return;
    }
    const since = this.#resumable ? (this.lastId ?? '0') : this.lastId;
    const req = { msg: { type: 'register', userId: this.userId, since: since ?? undefined },
                  seq: 0, done: false, internal: true, resolve() {}, reject() {} };
    if (this.#timeout > 0) {
      req.timer = setTimeout(() => {
        // no answer to the registration: this connection does not work
        req.done = true;
        this.#emit('error', new RelayError('no reply to register', 'timeout'));
        this.#ws?.close(4000, 'no reply to register');
      }, this.#timeout);
    }
    this.#send(req);
  }

  #registered(msg, req) {
    const since = req?.msg.since;
    if (req && !req.internal) {
      // register(): messages from here on are for this user, after since
      if (msg.userId !== this.userId) {
        this.userId = msg.userId;
        this.lastId = null;
      }
      if (since !== undefined) this.lastId = since;
    }
    const reg = { userId: msg.userId, since, recovered: msg.recovered,
                  timestamp: msg.timestamp };
    this.recovered = msg.recovered;
    this.#resumable = true;
    this.#lastRegister = reg;
    this.#emit('register', reg);
    return reg;
  }

  #ready(reg) {
    this.#state = 'open';
    this.#attempt = 0;
    this.#emit('open', { connectionId: this.connectionId, processId: this.processId,
                         userId: reg ? reg.userId : null, since: reg?.since,
                         recovered: reg?.recovered });
    for (const req of this.#outbox.splice(0)) this.#send(req);
    for (const w of this.#waiters.splice(0)) w.resolve(this);
  }

  // An error reply is about the oldest request that may have caused it
  // and that the server had not answered yet: one sent after every request
  // answered so far, and not after a ping or register still waiting (those
  // are answered at once, in order).
  #error(msg) {
    const text = String(msg.message);
    const kinds = ERROR_KINDS.find(([re]) => re.test(text))?.[1];
    const wait = this.#pending.find((r) => r.msg.type === 'ping' || r.msg.type === 'register');
    const req = this.#pending.find((r) => r.seq > this.#answered &&
                                          (!wait || r.seq <= wait.seq) &&
                                          (!kinds || kinds.includes(r.msg.type)));
    const error = new RelayError(text, 'server', msg);
    if (req) this.#settle(req, null, error);
    if (!req || req.internal) this.#emit('error', error);
    if (req?.internal && kinds) {
      // the server refuses this user: no point in reconnecting as it
      this.close(1000, 'register refused');
    } else if (req?.internal) {
      this.#ws?.close(4000, 'register failed');
    }
  }

  #delivered(msg) {
    if (typeof msg.id === 'string' && ID.test(msg.id)) {
      if (this.lastId !== null && compareIds(msg.id, this.lastId) <= 0) return;
      this.lastId = msg.id;
    }
    if (DELIVERIES.has(msg.type)) this.#emit(msg.type, msg);
    this.#emit('message', msg);
  }
}

function closed(why = 'the client is closed') {
  return new RelayError(why, 'closed');
}

function checkUserId(id, what) {
  if (typeof id !== 'string' || id === '' ||
      new TextEncoder().encode(id).length > MAX_USER_ID) {
    throw new TypeError(`${what} must be a string of 1 to ${MAX_USER_ID} bytes`);
  }
}

function checkSince(since) {
  if (typeof since !== 'string' || !ID.test(since)) {
    throw new TypeError(`since must be a message id ("<ms>-<seq>" or "0"): ${since}`);
  }
  return since;
}

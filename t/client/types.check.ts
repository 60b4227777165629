// Compiled with tsc --noEmit --strict by client.test.mjs: a program that
// uses every declaration of client/ws-relay-client.d.ts as the README does.
import { connect, compareIds, RelayClient, RelayError } from '../../client/ws-relay-client.js';
import type { ChatReply, NotificationReply, Registration, RelayMessage,
              WebSocketClass } from '../../client/ws-relay-client.js';

declare const SomeWebSocket: WebSocketClass;
declare function log(...values: unknown[]): void;

async function main(): Promise<void> {
  const relay: RelayClient = connect('ws://127.0.0.1:3000/', {
    userId: 'alice', since: '0', timeout: 5000, WebSocket: SomeWebSocket,
    reconnect: { initialDelay: 500, maxDelay: 15000, jitter: 1 },
  });
  const off = relay.on('chat', (m) => log(m.sender, String(m.text), m.id));
  relay.on('notification', (m) => log(m.action, m.data, m.message));
  relay.on('message', (m: RelayMessage) => log(m.type, m.timestamp));
  relay.on('register', (r: Registration) => log(r.userId, r.since, r.recovered));
  relay.on('open', (ev) => log(ev.processId, ev.connectionId, ev.recovered));
  relay.on('close', (ev) => log(ev.code, ev.reason, ev.delay ?? 'no reconnect'));
  relay.once('welcome', (w) => log(w.connectionId, w.userId));
  relay.on('connecting', (ev) => log(ev.url, ev.attempt));
  relay.on('error', (e: RelayError) => log(e.code, e.message, e.reply?.message));
  off();
  await relay.ready();
  const reg: Registration = await relay.register('bob', { since: '1700000000000-0' });
  const c: ChatReply = await relay.chat('carol', 'hi');
  const n: NotificationReply = await relay.notify('carol', 'new_message', { n: 1 });
  const pong = await relay.ping();
  const state: 'connecting' | 'open' | 'waiting' | 'closed' = relay.state;
  log(reg.recovered, c.delivered, c.queued, c.id, n.connections, pong.timestamp, state,
              relay.userId, relay.lastId, relay.recovered, relay.url, relay.processId,
              compareIds('1-10', '1-9') > 0);
  try {
    await relay.chat('dave', 'x');
  } catch (e) {
    if (e instanceof RelayError && e.code === 'closed') log('closed before the reply');
  }
  connect('ws://127.0.0.1:3000/', { reconnect: false });
  new RelayClient('ws://127.0.0.1:3000/');
  await relay.close(1000, 'bye');
}

main();

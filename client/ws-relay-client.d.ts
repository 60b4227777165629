// Types of ws-relay-client.js: a client for ngx_ws_relay_module.

/** A WebSocket class: the browser's, Node's (22 and later), the "ws"
 *  package's, or one of yours that extends them. */
export type WebSocketClass = new (url: string) => unknown;

export interface ReconnectOptions {
  /** ms before the first reconnect at most (500); it doubles each time */
  initialDelay?: number;
  /** ms, the most the wait grows to (15000) */
  maxDelay?: number;
  /** the random part of each wait: 1, anywhere from 0 to it (full jitter, the
   *  default); 0.5, from half of it; 0, none */
  jitter?: number;
}

export interface ConnectOptions {
  /** registered on every connection; with ws_relay_user_id, the server's */
  userId?: string;
  /** resume after this message id on the first connection ("0": all kept) */
  since?: string;
  /** false: never reconnect */
  reconnect?: ReconnectOptions | false;
  /** ms to wait for each reply (10000); 0: no limit */
  timeout?: number;
  /** the WebSocket class: globalThis.WebSocket by default; in Node before
   *  22, the "ws" package's */
  WebSocket?: WebSocketClass;
}

/** A message delivered to the user: a chat, a notification, or what the
 *  API's send-to-user sent.  With the server's history it has an id. */
export interface RelayMessage {
  type: string;
  sender: string;
  timestamp: number;
  id?: string;
  [field: string]: unknown;
}

export interface ChatMessage extends RelayMessage {
  type: 'chat';
  text: unknown;
}

export interface NotificationMessage extends RelayMessage {
  type: 'notification';
  action?: unknown;
  data?: unknown;
  /** from POST /api/send-to-user */
  message?: unknown;
}

export interface ChatReply {
  type: 'chat_delivered';
  targetUserId: string;
  /** a connection of the target got it */
  delivered: boolean;
  /** with history: kept, and nobody got it now */
  queued?: boolean;
  /** with history: its id */
  id?: string;
  timestamp: number;
}

export interface NotificationReply {
  type: 'notification_result';
  targetUserId: string;
  delivered: boolean;
  /** how many connections of the target got it */
  connections: number;
  queued?: boolean;
  id?: string;
  timestamp: number;
}

export interface Pong {
  type: 'pong';
  timestamp: number;
}

export interface Registration {
  userId: string;
  /** the id it resumed after, if any */
  since?: string;
  /** after a since: whether everything after it was replayed */
  recovered?: boolean;
  timestamp: number;
}

export interface Welcome {
  type: 'welcome';
  connectionId: string;
  processId: number;
  userId?: string;
  timestamp: number;
}

export interface OpenEvent {
  connectionId: string | null;
  processId: number | null;
  userId: string | null;
  since?: string;
  recovered?: boolean;
}

export interface CloseEvent {
  code: number;
  reason: string;
  /** ms until the reconnect; null: none */
  delay: number | null;
  /** reconnects since the last open */
  attempt: number;
}

export interface ConnectingEvent {
  url: string;
  attempt: number;
}

export interface RelayEvents {
  connecting: ConnectingEvent;
  welcome: Welcome;
  register: Registration;
  open: OpenEvent;
  close: CloseEvent;
  chat: ChatMessage;
  notification: NotificationMessage;
  message: RelayMessage;
  error: RelayError;
}

export type RelayState = 'connecting' | 'open' | 'waiting' | 'closed';

export declare class RelayError extends Error {
  constructor(message: string, code: RelayError['code'], reply?: object);
  readonly code: 'closed' | 'timeout' | 'server' | 'socket';
  /** the server's error reply */
  readonly reply?: { type: 'error'; message: string };
}

export declare class RelayClient {
  constructor(url: string, options?: ConnectOptions);
  readonly url: string;
  readonly state: RelayState;
  /** the user registered (or to register) on each connection */
  readonly userId: string | null;
  /** the last message id seen: the next resume starts after it */
  readonly lastId: string | null;
  /** the last registration's recovered */
  readonly recovered: boolean | undefined;
  readonly connectionId: string | null;
  readonly processId: number | null;

  /** returns a function that removes the listener */
  on<K extends keyof RelayEvents>(type: K, listener: (ev: RelayEvents[K]) => void): () => void;
  off<K extends keyof RelayEvents>(type: K, listener: (ev: RelayEvents[K]) => void): void;
  once<K extends keyof RelayEvents>(type: K, listener: (ev: RelayEvents[K]) => void): () => void;

  /** resolves when connected and registered; rejects once closed */
  ready(): Promise<this>;
  register(userId: string, options?: { since?: string }): Promise<Registration>;
  chat(target: string, text: unknown): Promise<ChatReply>;
  notify(target: string, action?: unknown, data?: unknown): Promise<NotificationReply>;
  ping(): Promise<Pong>;
  /** stops reconnecting; resolves when the socket is closed */
  close(code?: number, reason?: string): Promise<void>;
}

export declare function connect(url: string, options?: ConnectOptions): RelayClient;

/** <0, 0, >0 as id a is before, the same as, after id b ("<ms>-<seq>") */
export declare function compareIds(a: string, b: string): number;

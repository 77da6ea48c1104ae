/**
 * Type declarations of drizzle.js, the browser (and node) client of drizzle_gateway.
 *
 * Replies are `unknown` here; `drizzle-gateway codegen ts` writes the types of one
 * gateway and `typed(dz)`, which wraps a `Drizzle` with them.
 *
 * @module drizzle
 */

/** The websocket subprotocol: "drizzle.v1". */
export declare const SUBPROTOCOL: "drizzle.v1";

/** Websocket close codes the gateway uses (drizzle_gateway.protocol.CloseCode). */
export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  GOING_AWAY: 1001;
  ABNORMAL: 1006;
  MESSAGE_TOO_BIG: 1009;
  INTERNAL_ERROR: 1011;
  SERVICE_RESTART: 1012;
  UNAUTHENTICATED: 4001;
  TOKEN_EXPIRED: 4003;
  SLOW_CONSUMER: 4008;
}>;

/** Error codes the client itself produces (the server's codes arrive as they are). */
export declare const ClientErrorCode: Readonly<{
  TIMEOUT: "TIMEOUT";
  CONNECTION_LOST: "CONNECTION_LOST";
  NOT_CONNECTED: "NOT_CONNECTED";
  CLOSED: "CLOSED";
}>;

/** An error frame from the server, or a failure of the client (timeout, lost connection). */
export declare class DrizzleError extends Error {
  constructor(code: string, message: string, details?: unknown);
  /** stable error code, e.g. "INVALID_DATA" or "TIMEOUT" */
  code: string;
  /** whatever helps fix the request (e.g. field errors) */
  details: unknown;
}

/** Whether to reconnect after the socket closed with `code` (4003: only when a fresh token can be had, `canRefresh`). */
export declare function shouldReconnect(code: number, options?: { canRefresh?: boolean }): boolean;

/** ms from now until refreshing a token that expires in `expiresIn` ms: `ahead` before, or halfway when shorter-lived. */
export declare function refreshDelay(expiresIn: number, ahead: number): number;

export interface BackoffOptions {
  /** delay cap of the first retry, in ms (500) */
  initial?: number;
  /** largest delay, in ms (30000) */
  max?: number;
  /** growth of the cap per attempt (2) */
  factor?: number;
  /** random share of the delay, 0 (none) .. 1 ("full jitter") (0.5) */
  jitter?: number;
}

/** The delay in ms before reconnect attempt number `attempt` (0 for the first retry). */
export declare function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;

/**
 * The websocket URL a client opens for `url`: `ws://` and `wss://` URLs as they are; a path
 * ("/ws") or an `http(s)://` URL resolved against `base` (the page's address), http becoming
 * ws and https becoming wss.
 */
export declare function resolveWebsocketUrl(url: string, base?: string): string;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** A decoded reply or error frame. */
export interface ReplyFrame {
  request_id: number | string;
  data?: unknown;
  code?: string;
  error?: string;
  details?: unknown;
}

/** Requests in flight: ids, matching replies, timeouts. */
export declare class RequestTracker {
  constructor(timers?: Timers);
  readonly size: number;
  open(timeout: number): { id: number; promise: Promise<unknown> };
  settle(frame: ReplyFrame): boolean;
  fail(id: number, error: DrizzleError): void;
  failAll(error: DrizzleError): void;
}

/** The heartbeat's decision: when to ping, when the server counts as dead. */
export declare class Heartbeat {
  constructor(options?: { interval?: number; timeout?: number }, now?: number);
  interval: number;
  timeout: number;
  lastHeard: number;
  pingSentAt: number | null;
  heard(now: number): void;
  pinged(now: number): void;
  decide(now: number): "wait" | "ping" | "dead";
}

/** Split frames from the server into events and replies; a gap notice is an event with `gap` and no `data`. */
export declare function classifyFrame(
  text: string,
):
  | { kind: "event"; topic: string; data: unknown; offset?: number; epoch?: string; gap?: { from: number; to: number } }
  | { kind: "reply"; frame: ReplyFrame }
  | { kind: "junk" };

/** A request frame (the client adds `request_id`). */
export interface RequestFrame {
  action: string;
  resource?: string;
  data?: unknown;
  fields?: string[];
}

/** Built-in actions that are safe to send again after a transient refusal. */
export declare const RETRYABLE_ACTIONS: readonly string[];
/** A fresh random idempotency key (128 bits, hex). */
export declare function newIdempotencyKey(): string;
/** Whether a request failed because the connection was lost (a publish is then sent again). */
export declare function isConnectionLoss(error: unknown): boolean;

export interface PublishOptions {
  /** 1 to 64 characters of A-Z a-z 0-9 _ - . (default: a fresh random key) */
  idempotencyKey?: string;
  timeout?: number;
}

/** The reply of `__publish__`. */
export interface PublishReply {
  topic: string;
  /** topics with history: the event's position (the original's for a duplicate), when known in time */
  epoch?: string;
  offset?: number;
  /** true when an earlier publish carried the same idempotency key: this one reached nobody */
  duplicate?: boolean;
}

/** Whether a request frame may be sent again after a transient refusal. */
export declare function isRetryable(frame: RequestFrame): boolean;

/** Milliseconds to wait before sending a refused request again, or null when the refusal is final. */
export declare function retryDelay(error: unknown, maxDelay?: number): number | null;

/** Retries, single file, paced by the server's `retry_after`. */
export declare class RetryLine {
  constructor(timers?: Timers, now?: () => number);
  readonly size: number;
  refused(delay: number): void;
  push<T>(send: () => Promise<T>): Promise<T>;
  clear(error: DrizzleError): void;
}

export interface EventMeta {
  /** the concrete channel the event came on */
  topic: string;
  /** topics with history: the event's offset in its channel */
  offset?: number;
}

/** Where a subscription to a topic with history stands. */
export interface Position {
  /** the channel's epoch (changes when its history is lost) */
  epoch: string;
  /** the offset of the last event delivered */
  offset: number;
}

/** A topic with history re-subscribed after a reconnect, or whose history the server lost. */
export interface RecoveryInfo {
  topic: string;
  /** false: events were lost; reload state */
  recovered: boolean;
  epoch: string;
  offset: number;
}

/** Offsets of a topic with history that will not be delivered (emitted in their place among its events). */
export interface GapInfo {
  topic: string;
  epoch: string;
  /** the first offset lost */
  from: number;
  /** the last offset lost (inclusive); delivery goes on at `to + 1` */
  to: number;
}

/** Receives a subscription's events (projected to its `fields`). */
export type EventHandler<T = unknown> = (data: T, meta: EventMeta) => void;

export interface CloseInfo {
  /** the close code (1006 when the socket just dropped) */
  code: number;
  reason: string;
  willReconnect: boolean;
}

export interface ConnectOptions {
  /** sent with `__auth__` after every (re)connect; a function works as `getToken` */
  token?: string | (() => string | Promise<string>);
  /** asked for a fresh token on every (re)connect and ahead of each expiry the gateway announces */
  getToken?: () => string | Promise<string>;
  /** ms before an expiry to refresh; halfway for shorter-lived tokens (30000) */
  refreshAhead?: number;
  /** ms before a call without reply rejects with TIMEOUT (10000) */
  timeout?: number;
  /** ms of silence before a `__ping__`; false turns heartbeats off (15000) */
  heartbeatInterval?: number | false;
  /** ms an unanswered ping may take before the server counts as dead (10000) */
  heartbeatTimeout?: number;
  /** reconnect by itself after a drop (true) */
  reconnect?: boolean;
  /** reconnect delays */
  backoff?: BackoffOptions;
  /** times a request that is safe to retry is sent again after a transient refusal (10) */
  retries?: number;
  /** ms; a refusal asking to wait longer than this is final (10000) */
  maxRetryDelay?: number;
  /** `__subscribe__` requests in flight at once while re-subscribing (8) */
  resubscribeConcurrency?: number;
  /** the WebSocket constructor to use (node before 22, tests) */
  WebSocket?: unknown;
  /** clock in ms (tests) */
  now?: () => number;
  /** timer functions (tests) */
  timers?: Timers;
}

export interface CallOptions {
  /** output fields to return, nested with dots */
  fields?: readonly string[];
  /** ms before the call rejects with TIMEOUT */
  timeout?: number;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Who a join or leave is about: the channel, and the member's key. */
export interface MemberMeta {
  topic: string;
  key: string;
}

/** What a subscription to a topic with presence may ask. */
export interface PresenceOptions<Member = any, Entry = Record<string, unknown>> {
  /** this connection's entry (topics with `client_presence`) */
  presence?: Entry;
  /** the member fields each join and leave carries */
  memberFields?: readonly string[];
  /** a member's first connection came (this connection's own join included) */
  onJoin?: (member: Member, meta: MemberMeta) => void;
  /** a member's last connection went */
  onLeave?: (member: Member, meta: MemberMeta) => void;
  /** joins and leaves were not sent (over the server's rate): list the members again */
  onStale?: (meta: { topic: string }) => void;
}

/** One member of a channel, as `presence(topic)` lists it. */
export interface PresenceEntry<Member = any> {
  key: string;
  /** its connections, over every gateway process */
  connections: number;
  member: Member;
}

/** One active subscription; `unsubscribe()` ends it. */
export declare class Subscription {
  constructor(client: Drizzle, topic: string, handler: EventHandler<any>, fields: string[] | undefined,
              attendance?: PresenceOptions);
  readonly client: Drizzle;
  readonly topic: string;
  handler: EventHandler<any>;
  fields: string[] | undefined;
  attendance: PresenceOptions;
  active: boolean;
  /** Stop receiving events; the server subscription ends with the last local one. */
  unsubscribe(): Promise<void>;
}

/**
 * The items of one streaming reply (`Drizzle.stream`), as an async iterator. `return()`, which a
 * `break` out of `for await` calls, cancels the stream on the server while it runs.
 */
export declare class StreamReader<T = unknown> implements AsyncIterableIterator<T> {
  constructor(cancel: () => Promise<unknown>);
  /** no more frames will come (the end, an error, a drop, or `return()`) */
  ended: boolean;
  /** Hand it one frame of the stream; true when that frame ended it. */
  push(frame: Record<string, unknown>): boolean;
  /** End it with `error`, after the items already pushed. */
  fail(error: Error): void;
  next(): Promise<IteratorResult<T, undefined>>;
  return(value?: unknown): Promise<IteratorResult<T, undefined>>;
  [Symbol.asyncIterator](): StreamReader<T>;
}

export interface DrizzleEvents {
  open: undefined;
  close: CloseInfo;
  reconnect: undefined;
  state: ConnectionState;
  error: DrizzleError;
  recovery: RecoveryInfo;
  gap: GapInfo;
}

/** A connection to a drizzle_gateway; create it with `Drizzle.connect(url, options)`. */
export declare class Drizzle {
  /** Open a connection and resolve once it is ready (authenticated, when a token is given). */
  static connect(url: string, options?: ConnectOptions): Promise<Drizzle>;
  constructor(url: string, options?: ConnectOptions);
  readonly url: string;
  state: ConnectionState;
  /** Listen to a connection event; returns a function that stops listening. */
  on<K extends keyof DrizzleEvents>(type: K, listener: (detail: DrizzleEvents[K]) => void): () => void;
  off<K extends keyof DrizzleEvents>(type: K, listener: (detail: DrizzleEvents[K]) => void): void;
  /** Call `resource.action`; resolves with the reply's data, rejects with a DrizzleError. */
  call(resource: string, action: string, data?: unknown, options?: CallOptions): Promise<unknown>;
  /** Send any request frame (a request_id is added) and await its reply's data. */
  request(frame: RequestFrame, timeout?: number): Promise<unknown>;
  /**
   * Call a streaming action: its items, as they arrive. Leaving a `for await` loop (or
   * `return()`) cancels the stream on the server; an error frame rejects `next()`.
   */
  stream(resource: string, action: string, data?: unknown, options?: { fields?: readonly string[] }): StreamReader;
  /** Receive the events of a concrete channel such as "chat.lobby". */
  subscribe(topic: string, handler: EventHandler<any>,
            options?: { fields?: readonly string[] } & PresenceOptions): Promise<Subscription>;
  /** The members of a channel of a topic with presence, one entry each. */
  presence(topic: string, options?: { fields?: readonly string[] }): Promise<PresenceEntry[]>;
  /** Topics with history: the channel's epoch and the offset of the last event delivered. */
  position(topic: string): Position | undefined;
  /**
   * Publish to a topic declared with client_publish; the server validates the payload. It carries an
   * idempotency key (random unless given) and is sent again with it after a reconnect.
   */
  publish(topic: string, payload: unknown, options?: PublishOptions): Promise<PublishReply>;
  /** The gateway's `__schema__` document. */
  schema(): Promise<Record<string, unknown>>;
  /** Round-trip a `__ping__`: "pong". */
  ping(): Promise<string>;
  /** Close for good: no reconnect; calls in flight reject with CLOSED. */
  close(code?: number, reason?: string): void;
}

export default Drizzle;

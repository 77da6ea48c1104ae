/**
 * drizzle.js: the browser client of drizzle_gateway (wire protocol drizzle.v1).
 *
 * One dependency-free ES module, no build step:
 *
 *     import { Drizzle } from "/drizzle.js";
 *     const dz = await Drizzle.connect("ws://localhost:8888/ws");
 *     const todo = await dz.call("todos", "create", { title: "milk" }, { fields: ["id"] });
 *     for await (const found of dz.stream("todos", "search", { q: "mi" }, { fields: ["id"] })) console.log(found.id);
 *     const sub = await dz.subscribe("chat.lobby", (data, meta) => console.log(meta.topic, data));
 *     await dz.publish("chat.lobby", { author: "ada", text: "hi" });
 *     sub.unsubscribe();
 *
 * The client numbers its requests and matches replies by `request_id`, rejects a
 * call that gets no reply in time, detects a dead server with `__ping__`
 * heartbeats, and after a dropped connection reconnects with jittered exponential
 * backoff and re-subscribes everything. Requests that are safe to send twice
 * (subscribe, unsubscribe, ping, schema) are sent again after a `RATE_LIMITED`,
 * once its `retry_after` has passed. A publish carries a random idempotency key,
 * so one whose connection drops before its reply is sent again, with the same
 * key, once the client has reconnected: the server delivers it once. On topics with history the client remembers
 * each channel's epoch and last offset, re-subscribes with `since` so the events
 * missed while disconnected arrive first, never hands an offset to a handler twice,
 * and emits "recovery" (`recovered: false`: events were lost). With `getToken` it
 * authenticates on every (re)connect and, when the gateway says the identity
 * expires, sends `__auth__` again with a fresh token ahead of the expiry.
 * The pure parts (backoff, close-code policy, request tracking, heartbeat
 * decision, retry policy, refresh timing) are exported for tests and for other clients.
 *
 * @module drizzle
 */

export const SUBPROTOCOL = "drizzle.v1";

/** Websocket close codes the gateway uses (drizzle_gateway.protocol.CloseCode). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  UNAUTHENTICATED: 4001,
  TOKEN_EXPIRED: 4003,
  SLOW_CONSUMER: 4008,
});

/**
 * Error codes the client itself produces (the server's codes arrive as they are).
 */
export const ClientErrorCode = Object.freeze({
  TIMEOUT: "TIMEOUT",
  CONNECTION_LOST: "CONNECTION_LOST",
  NOT_CONNECTED: "NOT_CONNECTED",
  CLOSED: "CLOSED",
});

/**
 * An error frame from the server, or a failure of the client (timeout, lost connection).
 */
export class DrizzleError extends Error {
  /**
   * @param {string} code stable error code, e.g. "INVALID_DATA" or "TIMEOUT"
   * @param {string} message human-readable text (the error frame's "error")
   * @param {*} [details] whatever helps fix the request (e.g. field errors)
   */
  constructor(code, message, details = undefined) {
    super(message);
    this.name = "DrizzleError";
    /** @type {string} */
    this.code = code;
    /** @type {*} */
    this.details = details;
  }
}

// -- pure logic ---------------------------------------------------------------

/** Close codes after which reconnecting would not help. */
const FINAL_CLOSE_CODES = new Set([
  CloseCode.NORMAL, // the session was ended on purpose
  CloseCode.MESSAGE_TOO_BIG, // resending would fail again
  CloseCode.UNAUTHENTICATED, // needs new credentials first
]);

/**
 * Whether to reconnect after the socket closed with `code`.
 * 1000, 1009 and 4001 are final; 4003 (token expired) is final unless the client can get a
 * fresh token (`canRefresh`); 1001, 1011, 1012 (the server drained for a restart), 4008,
 * 1006 (dropped) and others are not.
 * @param {number} code
 * @param {{canRefresh?: boolean}} [options]
 * @returns {boolean}
 */
export function shouldReconnect(code, { canRefresh = false } = {}) {
  if (code === CloseCode.TOKEN_EXPIRED) return canRefresh;
  return !FINAL_CLOSE_CODES.has(code);
}

/**
 * When to refresh a token that expires in `expiresIn` ms: `ahead` ms before, or halfway
 * when the identity is shorter-lived than twice `ahead`.
 * @param {number} expiresIn ms left, as the server counts them (`__auth__`'s `expires_in` x 1000)
 * @param {number} ahead ms
 * @returns {number} ms from now
 */
export function refreshDelay(expiresIn, ahead) {
  return Math.max(0, expiresIn - Math.min(ahead, expiresIn / 2));
}

/** ms before an expiry under which a failed refresh is not tried again (the gateway closes with 4003). */
const LAST_TRY_MS = 100;

/**
 * @typedef {Object} BackoffOptions
 * @property {number} [initial=500] delay cap of the first retry, in ms
 * @property {number} [max=30000] largest delay, in ms
 * @property {number} [factor=2] growth of the cap per attempt
 * @property {number} [jitter=0.5] random share of the delay, 0 (none) .. 1 ("full jitter")
 */

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry):
 * the cap grows as initial * factor^attempt up to max, and a random share of it
 * (`jitter`) is spread out so that many clients do not reconnect all at once.
 * @param {number} attempt
 * @param {BackoffOptions} [options]
 * @param {() => number} [random] uniform in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { initial = 500, max = 30000, factor = 2, jitter = 0.5 } = options;
  const cap = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return cap * (1 - jitter) + cap * jitter * random();
}

/**
 * The websocket URL a client opens for `url`: a `ws://` or `wss://` URL as it is; a path
 * ("/ws") or an `http(s)://` URL resolved against `base`, the page's address, with http
 * becoming ws and https becoming wss, so that a page served over https connects over TLS.
 * @param {string} url
 * @param {string} [base] the page's address (`location.href` in a browser)
 * @returns {string}
 */
export function resolveWebsocketUrl(url, base = globalThis.location?.href) {
  if (/^wss?:\/\//i.test(url)) return url;
  const resolved = base === undefined ? new URL(url) : new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href;
}

/**
 * @typedef {Object} Timers
 * @property {(fn: () => void, ms: number) => *} setTimeout
 * @property {(handle: *) => void} clearTimeout
 */

/** @type {Timers} */
const realTimers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle),
};

/**
 * Requests in flight: gives out request ids, matches reply and error frames to
 * them, and rejects those that get no reply within their timeout.
 */
export class RequestTracker {
  /** @param {Timers} [timers] injectable for tests */
  constructor(timers = realTimers) {
    this.timers = timers;
    this.nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function, timer: *}>} */
    this.pending = new Map();
  }

  /** Number of requests waiting for a reply. */
  get size() {
    return this.pending.size;
  }

  /**
   * Reserve an id and a promise for its reply.
   * @param {number} timeout ms before the promise rejects with TIMEOUT
   * @returns {{id: number, promise: Promise<*>}}
   */
  open(timeout) {
    const id = this.nextId++;
    const promise = new Promise((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        this.pending.delete(id);
        reject(new DrizzleError(ClientErrorCode.TIMEOUT, `no reply within ${timeout} ms`, { request_id: id }));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
    });
    return { id, promise };
  }

  /**
   * Settle the request a reply or error frame answers.
   * @param {Object} frame a decoded frame with a request_id
   * @returns {boolean} false when no request was waiting for it (late or unknown)
   */
  settle(frame) {
    const entry = this.pending.get(frame.request_id);
    if (entry === undefined) return false;
    this.pending.delete(frame.request_id);
    this.timers.clearTimeout(entry.timer);
    if (typeof frame.code === "string") {
      entry.reject(new DrizzleError(frame.code, frame.error ?? "", frame.details));
    } else {
      entry.resolve(frame.data);
    }
    return true;
  }

  /**
   * Reject one request without a frame (e.g. it could not be sent).
   * @param {number} id
   * @param {DrizzleError} error
   */
  fail(id, error) {
    const entry = this.pending.get(id);
    if (entry === undefined) return;
    this.pending.delete(id);
    this.timers.clearTimeout(entry.timer);
    entry.reject(error);
  }

  /**
   * Reject every request in flight (the connection dropped).
   * @param {DrizzleError} error
   */
  failAll(error) {
    for (const id of [...this.pending.keys()]) this.fail(id, error);
  }
}

/**
 * The heartbeat's decision: the browser cannot see websocket pings, so the
 * client sends `__ping__` when it has heard nothing for `interval` ms and
 * declares the server dead when that ping stays unanswered for `timeout` ms.
 * Any frame from the server counts as a sign of life.
 */
export class Heartbeat {
  /**
   * @param {{interval?: number, timeout?: number}} [options] ms
   * @param {number} [now] the current time, ms
   */
  constructor({ interval = 15000, timeout = 10000 } = {}, now = 0) {
    this.interval = interval;
    this.timeout = timeout;
    this.lastHeard = now;
    /** @type {number|null} when the unanswered ping was sent */
    this.pingSentAt = null;
  }

  /** A frame arrived from the server at `now`. */
  heard(now) {
    this.lastHeard = now;
    this.pingSentAt = null;
  }

  /** A ping was sent at `now`. */
  pinged(now) {
    this.pingSentAt = now;
  }

  /**
   * What to do at `now`.
   * @param {number} now
   * @returns {"wait"|"ping"|"dead"}
   */
  decide(now) {
    if (this.pingSentAt !== null) return now - this.pingSentAt >= this.timeout ? "dead" : "wait";
    return now - this.lastHeard >= this.interval ? "ping" : "wait";
  }
}

/**
 * Split frames from the server into events and replies.
 * @param {string} text
 * A gap notice (`{"topic", "epoch", "gap": {"from", "to"}}`) is an event with `gap` and no `data`.
 * A member's join or leave (`{"topic", "presence": "join"|"leave", "key", "member"}`), or a
 * `{"topic", "presence": "stale"}` notice, is a "presence" frame.
 * @returns {{kind: "event", topic: string, data: *, offset?: number, epoch?: string, gap?: {from: number, to: number}} | {kind: "presence", topic: string, presence: string, key?: string, member?: *} | {kind: "reply", frame: Object} | {kind: "junk"}}
 */
export function classifyFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    return { kind: "junk" };
  }
  if (frame === null || typeof frame !== "object" || Array.isArray(frame)) return { kind: "junk" };
  if (typeof frame.topic === "string" && typeof frame.presence === "string" && !("request_id" in frame)) {
    return { kind: "presence", topic: frame.topic, presence: frame.presence, key: frame.key, member: frame.member };
  }
  if (typeof frame.topic === "string" && !("request_id" in frame)) {
    const event = { kind: "event", topic: frame.topic, data: frame.data };
    if (Number.isInteger(frame.offset)) event.offset = frame.offset;
    if (typeof frame.epoch === "string") event.epoch = frame.epoch;
    const gap = frame.gap;
    if (gap !== null && typeof gap === "object" && Number.isInteger(gap.from) && Number.isInteger(gap.to)) {
      event.gap = { from: gap.from, to: gap.to };
    }
    return event;
  }
  if ("request_id" in frame) return { kind: "reply", frame };
  return { kind: "junk" };
}

// -- streaming replies --------------------------------------------------------

/**
 * The items of one streaming reply, as an async iterator (`for await ... of`). The client
 * pushes the stream's frames in as they arrive (`push`, `fail`); `next()` takes them in
 * order: `{"data", "more": true}` is an item, `{"more": false}` the end, an error frame
 * rejects with a DrizzleError after the items before it. `return()` (a `break` out of
 * `for await` calls it) drops what is left and, while the stream runs, calls `cancel`.
 * Items the consumer has not taken yet wait in memory.
 */
export class StreamReader {
  /** @param {() => Promise<*>} cancel asks the server to stop the stream (`__cancel__`) */
  constructor(cancel) {
    this.cancel = cancel;
    /** @type {Array<{value: *} | {error: Error} | {done: true}>} what arrived and was not taken yet */
    this.queue = [];
    /** @type {Array<{resolve: Function, reject: Function}>} `next()` calls waiting for a frame */
    this.waiting = [];
    /** no more frames will come: the end, an error or a drop was seen, or `return()` was called */
    this.ended = false;
    /** the consumer was given the end (or the error): `next()` answers done from now on */
    this.finished = false;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /**
   * One frame of this stream.
   * @param {Object} frame a decoded frame with the stream's request_id
   * @returns {boolean} whether it ended the stream
   */
  push(frame) {
    if (this.ended) return true;
    if (typeof frame.code === "string") {
      this.fail(new DrizzleError(frame.code, frame.error ?? "", frame.details));
      return true;
    }
    if ("data" in frame) this._put({ value: frame.data });
    if (frame.more !== true) { // the end frame; a plain reply (an action that does not stream) is its only item
      this.ended = true;
      this._put({ done: true });
    }
    return this.ended;
  }

  /** End the stream with `error` (after the items already pushed). */
  fail(error) {
    if (this.ended) return;
    this.ended = true;
    this._put({ error });
  }

  /** @returns {Promise<IteratorResult<*>>} */
  next() {
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    if (this.queue.length > 0) return this._take(this.queue.shift());
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Stop reading: what is left is dropped and, while the stream runs, it is cancelled on the server. */
  async return(value = undefined) {
    this.finished = true;
    this.queue = [];
    for (const waiter of this.waiting.splice(0)) waiter.resolve({ value: undefined, done: true });
    if (!this.ended) {
      this.ended = true;
      await this.cancel();
    }
    return { value, done: true };
  }

  _put(entry) {
    const waiter = this.waiting.shift();
    if (waiter === undefined) {
      this.queue.push(entry);
      return;
    }
    this._take(entry).then(waiter.resolve, waiter.reject);
  }

  _take(entry) {
    if ("value" in entry) return Promise.resolve({ value: entry.value, done: false });
    this.finished = true;
    this.queue = [];
    for (const waiter of this.waiting.splice(0)) waiter.resolve({ value: undefined, done: true });
    return "error" in entry ? Promise.reject(entry.error) : Promise.resolve({ value: undefined, done: true });
  }
}

// -- retrying what is safe to retry -------------------------------------------

/**
 * A fresh random idempotency key (128 bits, hex): what `publish` sends unless given one.
 * @returns {string}
 */
export function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Whether a request failed because the connection was lost (or is being re-established):
 * a publish with an idempotency key is then sent again on the next connection.
 * @param {*} error
 * @returns {boolean}
 */
export function isConnectionLoss(error) {
  return error instanceof DrizzleError
    && (error.code === ClientErrorCode.CONNECTION_LOST || error.code === ClientErrorCode.NOT_CONNECTED);
}

/**
 * Built-in actions that are safe to send again after a transient refusal: sending one
 * twice has the effect of sending it once. Application actions and `__publish__` are not
 * retried (they need not be idempotent).
 */
export const RETRYABLE_ACTIONS = Object.freeze(["__subscribe__", "__unsubscribe__", "__ping__", "__schema__"]);

/**
 * Whether a request frame may be sent again after a transient refusal.
 * @param {Object} frame a request frame (without request_id)
 * @returns {boolean}
 */
export function isRetryable(frame) {
  return frame.resource === undefined && RETRYABLE_ACTIONS.includes(frame.action);
}

/**
 * How long to wait before sending again a request the server refused for now, or null
 * when the refusal is final. `RATE_LIMITED` waits its `details.retry_after` seconds;
 * everything else (FORBIDDEN, TOPIC_NOT_FOUND, LIMIT_EXCEEDED of `max_subscriptions`,
 * TIMEOUT, ...) is final. A wait longer than `maxDelay` is final too.
 * @param {*} error what the request rejected with
 * @param {number} [maxDelay=10000] ms
 * @returns {number|null} milliseconds
 */
export function retryDelay(error, maxDelay = 10000) {
  if (!(error instanceof DrizzleError)) return null;
  let delay = null;
  if (error.code === "RATE_LIMITED") {
    const seconds = error.details?.retry_after;
    if (typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0) delay = seconds * 1000;
  }
  return delay !== null && delay <= maxDelay ? delay : null;
}

/**
 * Retries go single file: one at a time, none before the server's last `retry_after`
 * has passed, and, while more wait, no faster than one per that delay (the pace at
 * which the server's rate limit frees a slot). So retries do not compete for the
 * same slot and are not refused again and again.
 */
export class RetryLine {
  /**
   * @param {Timers} [timers] injectable for tests
   * @param {() => number} [now] clock in ms
   */
  constructor(timers = realTimers, now = () => Date.now()) {
    this.timers = timers;
    this.now = now;
    /** @type {{send: () => Promise<*>, resolve: Function, reject: Function}[]} */
    this.queue = [];
    this.busy = false;
    this.gate = 0;
    this.pace = 0;
    this.timer = null;
    this.generation = 0;
  }

  /** Number of retries waiting or running. */
  get size() {
    return this.queue.length + (this.busy ? 1 : 0);
  }

  /**
   * The server refused a request for `delay` ms: nothing in the line is sent before
   * then, and the line keeps that pace while it is not empty.
   * @param {number} delay ms
   */
  refused(delay) {
    this.pace = delay;
    this.gate = Math.max(this.gate, this.now() + delay);
  }

  /**
   * Run `send` at its turn.
   * @param {() => Promise<*>} send
   * @returns {Promise<*>} what `send` resolves or rejects with
   */
  push(send) {
    return new Promise((resolve, reject) => {
      this.queue.push({ send, resolve, reject });
      this._pump();
    });
  }

  /**
   * Reject every retry that waits (the connection dropped) and forget the pace.
   * @param {DrizzleError} error
   */
  clear(error) {
    this.generation += 1;
    this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.busy = false;
    this.gate = 0;
    this.pace = 0;
    for (const item of this.queue.splice(0)) item.reject(error);
  }

  _pump() {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const generation = this.generation;
    this.timer = this.timers.setTimeout(async () => {
      this.timer = null;
      const item = this.queue.shift();
      try {
        item.resolve(await item.send());
      } catch (error) {
        // note the refusal before the next retry's turn (whether this one is tried again or not)
        const delay = generation === this.generation ? retryDelay(error, Infinity) : null;
        if (delay !== null) this.refused(delay);
        item.reject(error);
      }
      if (generation !== this.generation) return; // cleared meanwhile
      this.gate = Math.max(this.gate, this.now() + this.pace);
      this.busy = false;
      this._pump();
    }, Math.max(0, this.gate - this.now()));
  }
}

// -- the client ---------------------------------------------------------------

/**
 * @typedef {Object} ConnectOptions
 * @property {string|(() => string|Promise<string>)} [token] sent with `__auth__` after every (re)connect;
 *   a function works as `getToken`
 * @property {() => string|Promise<string>} [getToken] asked for a fresh token on every (re)connect and
 *   ahead of each expiry the gateway announces (wins over `token`)
 * @property {number} [refreshAhead=30000] ms before an expiry to refresh (halfway for shorter-lived tokens)
 * @property {number} [timeout=10000] ms before a call without reply rejects with TIMEOUT
 * @property {number|false} [heartbeatInterval=15000] ms of silence before a `__ping__`; false turns heartbeats off
 * @property {number} [heartbeatTimeout=10000] ms an unanswered ping may take before the server counts as dead
 * @property {boolean} [reconnect=true] reconnect by itself after a drop
 * @property {BackoffOptions} [backoff] reconnect delays
 * @property {number} [retries=10] times a request that is safe to retry (`__subscribe__`, `__unsubscribe__`,
 *   `__ping__`, `__schema__`) is sent again after a transient refusal (`RATE_LIMITED`); 0 turns retries off
 * @property {number} [maxRetryDelay=10000] ms; a refusal asking to wait longer than this is final
 * @property {number} [resubscribeConcurrency=8] `__subscribe__` requests in flight at once while re-subscribing
 * @property {typeof WebSocket} [WebSocket] the constructor to use (tests inject one)
 * @property {() => number} [now] clock in ms (tests inject one)
 * @property {Timers} [timers] timer functions (tests inject them)
 */

/**
 * @typedef {Object} EventMeta
 * @property {string} topic the concrete channel the event came on
 * @property {number} [offset] topics with history: the event's offset in its channel
 */

/**
 * @typedef {Object} Position
 * @property {string} epoch the channel's epoch (changes when its history is lost)
 * @property {number} offset the offset of the last event delivered
 */

/**
 * @typedef {Object} RecoveryInfo
 * @property {string} topic
 * @property {boolean} recovered false: events were lost while disconnected; reload state
 * @property {string} epoch
 * @property {number} offset

/**
 * @typedef {Object} GapInfo
 * @property {string} topic
 * @property {string} epoch
 * @property {number} from the first offset that will not be delivered
 * @property {number} to the last one (inclusive); delivery goes on at `to + 1`
 */

/**
 * @callback EventHandler
 * @param {*} data the event's payload (projected to the subscription's fields)
 * @param {EventMeta} meta
 */

/**
 * @typedef {Object} CloseInfo
 * @property {number} code the close code (1006 when the socket just dropped)
 * @property {string} reason
 * @property {boolean} willReconnect
 */

/**
 * What a subscription to a topic with presence may ask (see `Drizzle.subscribe`).
 * @typedef {Object} PresenceOptions
 * @property {Object} [presence] this connection's entry (topics with `client_presence`)
 * @property {string[]} [memberFields] the member fields each join and leave carries
 * @property {(member: *, meta: {topic: string, key: string}) => void} [onJoin] a member's first connection came
 * @property {(member: *, meta: {topic: string, key: string}) => void} [onLeave] a member's last connection went
 * @property {(meta: {topic: string}) => void} [onStale] joins and leaves were not sent (over the server's
 *   rate): list the members again with `presence(topic)`
 */

/** One active subscription; `unsubscribe()` ends it. */
export class Subscription {
  /**
   * @param {Drizzle} client
   * @param {string} topic
   * @param {EventHandler} handler
   * @param {string[]|undefined} fields
   * @param {PresenceOptions} [attendance]
   */
  constructor(client, topic, handler, fields, attendance = {}) {
    this.client = client;
    this.topic = topic;
    this.handler = handler;
    this.fields = fields;
    this.attendance = attendance;
    this.active = true;
  }

  /**
   * Stop receiving events; the server subscription ends with the last local one.
   * @returns {Promise<void>}
   */
  async unsubscribe() {
    if (!this.active) return;
    this.active = false;
    await this.client._dropSubscription(this);
  }
}

/** A connection to a drizzle_gateway; create it with `Drizzle.connect(url, options)`. */
export class Drizzle {
  /**
   * Open a connection and resolve once it is ready (authenticated, when a token is given).
   * Rejects when the first attempt fails; later drops are repaired by reconnecting.
   * @param {string} url e.g. "wss://example.com/ws", or "/ws" on a page (see `resolveWebsocketUrl`)
   * @param {ConnectOptions} [options]
   * @returns {Promise<Drizzle>}
   */
  static async connect(url, options = {}) {
    const client = new Drizzle(url, options ?? {});
    await client._open();
    return client;
  }

  /**
   * @param {string} url
   * @param {ConnectOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = resolveWebsocketUrl(url);
    this.options = options ?? {};
    this.timeout = this.options.timeout ?? 10000;
    this.WebSocket = this.options.WebSocket ?? globalThis.WebSocket;
    this.now = this.options.now ?? (() => Date.now());
    this.timers = this.options.timers ?? realTimers;
    this.requests = new RequestTracker(this.timers);
    this.retries = this.options.retries ?? 10;
    this.maxRetryDelay = this.options.maxRetryDelay ?? 10000;
    this.resubscribeConcurrency = Math.max(1, this.options.resubscribeConcurrency ?? 8);
    this.retryLine = new RetryLine(this.timers, this.now);
    /** @type {"connecting"|"open"|"reconnecting"|"closed"} */
    this.state = "connecting";
    /** @type {Map<string, Set<Subscription>>} */
    this.subscriptions = new Map();
    /** @type {Map<string, Position>} topics with history: where each subscription stands */
    this.positions = new Map();
    /** @type {Map<number, StreamReader>} streaming replies running, by request id */
    this.streams = new Map();
    /** @type {Map<number, string>} request ids of `__subscribe__` in flight, and their topics */
    this.subscribing = new Map();
    /** @type {Map<string, Object[]>} topics whose offsets jumped: events held while the hole is read */
    this.held = new Map();
    this.listeners = new Map();
    this.socket = null;
    this.attempt = 0;
    this.closedByUser = false;
    this.heartbeat = null;
    this.heartbeatTimer = null;
    this.retryTimer = null;
    this.refreshTimer = null;
    /** How many times the connection became open (a publish waits for the next one to send again). */
    this.opens = 0;
  }

  // -- events -----------------------------------------------------------------

  /**
   * Listen to "open", "close" (with a CloseInfo), "reconnect" (after re-subscribing),
   * "state" (with the new state), "error" (a DrizzleError, e.g. a re-subscribe the
   * server refused, or a token refresh that failed) or "recovery" (a RecoveryInfo, for each topic with history
   * re-subscribed after a reconnect, or whose history the server lost:
   * `recovered: false` means events were lost) or "gap" (a GapInfo: offsets of a topic
   * with history that will not be delivered, in their place among its events; reload what
   * they covered). An offset that jumps within one epoch without the server's gap notice
   * is read from `__history__` first; what the history no longer holds is a "gap" too;
   * returns a function that stops listening.
   * @param {"open"|"close"|"reconnect"|"state"|"error"|"recovery"|"gap"} type
   * @param {(detail: *) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
    return () => this.off(type, listener);
  }

  /** Stop calling `listener` for `type`. */
  off(type, listener) {
    this.listeners.get(type)?.delete(listener);
  }

  _emit(type, detail) {
    for (const listener of [...(this.listeners.get(type) ?? [])]) {
      try {
        listener(detail);
      } catch (error) {
        console.error("drizzle listener failed", error);
      }
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", state);
  }

  // -- requests ---------------------------------------------------------------

  /**
   * Call `resource.action`; resolves with the reply's data, rejects with a DrizzleError.
   * @param {string} resource
   * @param {string} action
   * @param {Object} [data]
   * @param {{fields?: string[], timeout?: number}} [options]
   * @returns {Promise<*>}
   */
  call(resource, action, data = undefined, options = {}) {
    const frame = { resource, action };
    if (data !== undefined) frame.data = data;
    if (options.fields !== undefined) frame.fields = [...options.fields];
    return this.request(frame, options.timeout);
  }

  /**
   * Call a streaming action: its items, as they arrive, each carrying `fields`.
   * `for await (const item of dz.stream(...))`; leaving the loop early (or `return()`)
   * sends `__cancel__`, so the server closes the action's generator. An error frame
   * rejects `next()` after the items before it; a dropped connection rejects it with
   * CONNECTION_LOST (a stream is not resumed after a reconnect: call it again).
   * @param {string} resource
   * @param {string} action
   * @param {Object} [data]
   * @param {{fields?: string[]}} [options]
   * @returns {StreamReader}
   */
  stream(resource, action, data = undefined, options = {}) {
    const frame = { resource, action };
    if (data !== undefined) frame.data = data;
    if (options?.fields !== undefined) frame.fields = [...options.fields];
    const id = this.requests.nextId++;
    const socket = this.socket;
    const reader = new StreamReader(async () => {
      this.streams.delete(id);
      if (this.socket !== socket || !this._isOpen()) return;
      try {
        await this.request({ action: "__cancel__", data: { request_id: id } });
      } catch {
        // the connection dropped meanwhile: the server ends the stream with it
      }
    });
    if (this.state === "closed") {
      reader.fail(new DrizzleError(ClientErrorCode.CLOSED, "the client was closed"));
    } else if (!this._isOpen()) {
      reader.fail(new DrizzleError(ClientErrorCode.NOT_CONNECTED, "not connected; reconnecting"));
    } else {
      this.streams.set(id, reader);
      try {
        socket.send(JSON.stringify({ request_id: id, ...frame }));
      } catch (error) {
        this.streams.delete(id);
        reader.fail(new DrizzleError(ClientErrorCode.NOT_CONNECTED, String(error)));
      }
    }
    return reader;
  }

  /**
   * Send any request frame (a request_id is added) and await its reply's data.
   * The built-in actions that are safe to retry (see `RETRYABLE_ACTIONS`) are sent
   * again after a transient refusal, as `retryDelay` says, at most `retries` times.
   * @param {Object} frame
   * @param {number} [timeout] ms
   * @returns {Promise<*>}
   */
  request(frame, timeout = this.timeout) {
    if (this.state === "closed") {
      return Promise.reject(new DrizzleError(ClientErrorCode.CLOSED, "the client was closed"));
    }
    if (!this._isOpen()) {
      return Promise.reject(new DrizzleError(ClientErrorCode.NOT_CONNECTED, "not connected; reconnecting"));
    }
    if (isRetryable(frame)) return this._sendRetrying(this.socket, frame, timeout);
    return this._send(this.socket, frame, timeout);
  }

  /** `_send`, and again through the retry line after each transient refusal, while retries last. */
  async _sendRetrying(socket, frame, timeout = this.timeout) {
    const send = () => {
      if (this.socket !== socket) {
        return Promise.reject(new DrizzleError(ClientErrorCode.CONNECTION_LOST, "the connection dropped"));
      }
      return this._send(socket, frame, timeout);
    };
    // while retries wait, the server has said "not now": later requests queue behind them
    let inLine = this.retryLine.size > 0;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await (inLine ? this.retryLine.push(send) : send());
      } catch (error) {
        const delay = retryDelay(error, this.maxRetryDelay);
        if (delay === null || attempt >= this.retries) throw error;
        if (!inLine) this.retryLine.refused(delay); // the line notes the refusals of what it sends
        inLine = true;
      }
    }
  }

  _send(socket, frame, timeout = this.timeout) {
    const { id, promise } = this.requests.open(timeout);
    if (frame.action === "__subscribe__") {
      this.subscribing.set(id, frame.data.topic);
      const done = () => this.subscribing.delete(id);
      promise.then(done, done);
    }
    try {
      socket.send(JSON.stringify({ request_id: id, ...frame }));
    } catch (error) {
      this.requests.fail(id, new DrizzleError(ClientErrorCode.NOT_CONNECTED, String(error)));
    }
    return promise;
  }

  /**
   * Receive the events of a concrete channel such as "chat.lobby".
   * One field selection per channel and connection: the latest subscribe's `fields` win.
   * On a topic with presence, `presence` is this connection's entry, and `onJoin`, `onLeave`
   * and `onStale` hear the members' joins and leaves (cut to `memberFields`), this
   * connection's own join included; re-subscribing after a reconnect asks for them again.
   * @param {string} topic
   * @param {EventHandler} handler
   * @param {{fields?: string[]} & PresenceOptions} [options]
   * @returns {Promise<Subscription>}
   */
  async subscribe(topic, handler, options = {}) {
    const { fields, ...attendance } = options ?? {};
    const subscription = new Subscription(this, topic, handler, fields, attendance);
    if (!this.subscriptions.has(topic)) this.subscriptions.set(topic, new Set());
    const group = this.subscriptions.get(topic);
    group.add(subscription); // before the reply: events may arrive first
    try {
      await this.request({ action: "__subscribe__", data: subscribeData(topic, fields, undefined, group) });
    } catch (error) {
      subscription.active = false;
      group.delete(subscription);
      if (group.size === 0) this.subscriptions.delete(topic);
      throw error;
    }
    return subscription;
  }

  async _dropSubscription(subscription) {
    const group = this.subscriptions.get(subscription.topic);
    if (group === undefined) return;
    group.delete(subscription);
    if (group.size > 0) return;
    this.subscriptions.delete(subscription.topic);
    this.positions.delete(subscription.topic);
    if (this._isOpen()) {
      await this.request({ action: "__unsubscribe__", data: { topic: subscription.topic } });
    }
  }

  /**
   * The members of a channel of a topic with presence: one entry per member, with its
   * `key`, how many `connections` it has (over every gateway process) and its `member`
   * entry (cut to `fields`).
   * @param {string} topic
   * @param {{fields?: string[]}} [options]
   * @returns {Promise<{key: string, connections: number, member: *}[]>}
   */
  async presence(topic, options = {}) {
    const data = { topic };
    if (options?.fields !== undefined) data.fields = [...options.fields];
    const reply = await this.request({ action: "__presence__", data });
    return reply.members;
  }

  /**
   * Where the subscription to `topic` stands, on a topic with history: the channel's
   * epoch and the offset of the last event delivered (undefined otherwise).
   * @param {string} topic
   * @returns {Position|undefined}
   */
  position(topic) {
    const position = this.positions.get(topic);
    return position === undefined ? undefined : { ...position };
  }

  /**
   * Publish to a topic declared with client_publish; the server validates the payload.
   * The publish carries `options.idempotencyKey` (a fresh random key by default). When the
   * connection drops before the reply, it is sent again with the same key once the client
   * has reconnected (at most `retries` times, each waiting up to `timeout` ms for the
   * connection): the server delivers it once, and answers a repeat with `duplicate: true`.
   * Error frames (RATE_LIMITED included) and timeouts are not retried.
   * @param {string} topic
   * @param {*} payload
   * @param {{idempotencyKey?: string, timeout?: number}} [options]
   * @returns {Promise<{topic: string, epoch?: string, offset?: number, duplicate?: boolean}>}
   */
  async publish(topic, payload, options = {}) {
    const key = options.idempotencyKey ?? newIdempotencyKey();
    const frame = { action: "__publish__", data: { topic, payload, idempotency_key: key } };
    for (let attempt = 0; ; attempt++) {
      const opens = this.opens;
      try {
        return await this.request(frame, options.timeout);
      } catch (error) {
        if (!isConnectionLoss(error) || attempt >= this.retries || this.state === "closed") throw error;
        await this._reopened(opens);
      }
    }
  }

  /** Resolves once the connection is open again after `opens`; rejects when closed for good or after `timeout`. */
  _reopened(opens) {
    if (this.opens > opens && this._isOpen()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (settle, value) => {
        stopOpen();
        stopState();
        this.timers.clearTimeout(timer);
        settle(value);
      };
      const stopOpen = this.on("open", () => finish(resolve));
      const stopState = this.on("state", (state) => {
        if (state === "closed") finish(reject, new DrizzleError(ClientErrorCode.CLOSED, "the client was closed"));
      });
      const timer = this.timers.setTimeout(() => finish(reject, new DrizzleError(ClientErrorCode.CONNECTION_LOST,
        "the connection did not come back in time to send the publish again")), this.timeout);
    });
  }

  /**
   * The gateway's `__schema__` document: resources, actions, topics as JSON Schema.
   * @returns {Promise<Object>}
   */
  schema() {
    return this.request({ action: "__schema__" });
  }

  /**
   * Round-trip a `__ping__`.
   * @returns {Promise<string>} "pong"
   */
  ping() {
    return this.request({ action: "__ping__" });
  }

  /**
   * Close for good: no reconnect; calls in flight reject with CLOSED.
   * @param {number} [code=1000]
   * @param {string} [reason]
   */
  close(code = CloseCode.NORMAL, reason = "client closed") {
    this.closedByUser = true;
    this.timers.clearTimeout(this.retryTimer);
    this._stopHeartbeat();
    this._stopRefresh();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      detach(socket);
      try {
        socket.close(code, reason);
      } catch {
        // already closing
      }
    }
    const closed = new DrizzleError(ClientErrorCode.CLOSED, "the client was closed");
    this.retryLine.clear(closed);
    this.requests.failAll(closed);
    this._failStreams(closed);
    const wasClosed = this.state === "closed";
    this._setState("closed");
    if (!wasClosed) this._emit("close", { code, reason, willReconnect: false });
  }

  // -- the connection's life --------------------------------------------------

  _isOpen() {
    return this.socket !== null && this.state === "open";
  }

  /** Open a socket, authenticate, re-subscribe; resolves when ready. */
  _open() {
    return new Promise((resolve, reject) => {
      let ready = false;
      let socket;
      try {
        socket = new this.WebSocket(this.url, [SUBPROTOCOL]);
      } catch (error) {
        reject(new DrizzleError(ClientErrorCode.NOT_CONNECTED, String(error)));
        return;
      }
      this.socket = socket;
      socket.onmessage = (event) => this._receive(event.data);
      socket.onopen = async () => {
        try {
          await this._prepare(socket);
        } catch (error) {
          if (this.socket === socket) {
            // the server refused the token: final; a timeout or drop: worth another attempt
            const refused = !Object.values(ClientErrorCode).includes(error.code);
            const code = refused ? CloseCode.UNAUTHENTICATED : CloseCode.ABNORMAL;
            this._drop(socket, code, error.message, false);
            try {
              socket.close(refused ? CloseCode.NORMAL : undefined);
            } catch {
              // already closing
            }
          }
          reject(error);
          return;
        }
        ready = true;
        resolve();
      };
      socket.onclose = (event) => {
        if (!ready) {
          reject(new DrizzleError(ClientErrorCode.NOT_CONNECTED,
            `could not connect to ${this.url} (close code ${event.code})`, { code: event.code }));
        }
        this._drop(socket, event.code, event.reason, ready);
      };
      socket.onerror = () => {}; // a close event follows and carries the code
    });
  }

  /**
   * Authenticate and re-subscribe on a fresh socket before calling it open.
   * Every subscription is sent again, `resubscribeConcurrency` at a time, with retries after
   * transient refusals. One the server refuses for good (FORBIDDEN, TOPIC_NOT_FOUND,
   * LIMIT_EXCEEDED of max_subscriptions, or retries spent) ends and is reported as an
   * "error" event; a timeout or a drop throws, so the connection is tried again with every
   * subscription kept.
   */
  async _prepare(socket) {
    this.heartbeat = new Heartbeat(
      { interval: this.options.heartbeatInterval || 15000, timeout: this.options.heartbeatTimeout ?? 10000 },
      this.now(),
    );
    if (this._tokenSource() !== undefined) {
      const reply = await this._send(socket, { action: "__auth__", data: { token: await this._fetchToken() } });
      this._scheduleRefresh(socket, reply);
    }
    const reconnecting = this.state === "reconnecting";
    const refused = await this._resubscribe(socket);
    if (this.socket !== socket) throw new DrizzleError(ClientErrorCode.CONNECTION_LOST, "dropped while preparing");
    const lost = refused.find(({ error }) => isClientError(error));
    if (lost !== undefined) throw lost.error;
    for (const { topic, group, error } of refused) {
      if (this.subscriptions.get(topic) !== group) continue; // unsubscribed meanwhile
      for (const subscription of group) subscription.active = false;
      this.subscriptions.delete(topic);
      this._emit("error", error);
    }
    this.attempt = 0;
    this.opens += 1;
    this._setState("open");
    this._startHeartbeat();
    this._emit("open", undefined);
    if (reconnecting) this._emit("reconnect", undefined);
  }

  /**
   * Send `__subscribe__` for every subscription on `socket`, a few at a time.
   * @returns {Promise<{topic: string, group: Set<Subscription>, error: *}[]>} the refused ones
   */
  async _resubscribe(socket) {
    const todo = [...this.subscriptions.entries()];
    const refused = [];
    const worker = async () => {
      while (todo.length > 0 && this.socket === socket) {
        const [topic, group] = todo.shift();
        if (this.subscriptions.get(topic) !== group) continue; // unsubscribed meanwhile
        const fields = [...group].at(-1)?.fields;
        const since = this.positions.get(topic);
        try {
          const reply = await this._sendRetrying(socket,
            { action: "__subscribe__", data: subscribeData(topic, fields, since, group) });
          if (since !== undefined && reply !== null && typeof reply === "object" && "recovered" in reply) {
            this._emit("recovery", { topic, recovered: reply.recovered, epoch: reply.epoch, offset: reply.offset });
          }
        } catch (error) {
          refused.push({ topic, group, error });
        }
      }
    };
    const workers = Math.min(this.resubscribeConcurrency, todo.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return refused;
  }

  // -- the token and its refresh ---------------------------------------------

  /** `getToken`, else `token` (a string or a function); undefined without either. */
  _tokenSource() {
    return this.options.getToken ?? this.options.token;
  }

  /** Whether a fresh token can be had after an expiry (a function to call). */
  _canRefresh() {
    return typeof this._tokenSource() === "function";
  }

  /** A token to send now; a `getToken` that fails is a client error (worth another attempt), not a refusal. */
  async _fetchToken() {
    const source = this._tokenSource();
    if (typeof source !== "function") return source;
    try {
      return await source();
    } catch (error) {
      throw new DrizzleError(ClientErrorCode.NOT_CONNECTED, `getToken failed: ${error?.message ?? error}`);
    }
  }

  /** After an `__auth__` reply on `socket`: plan the next refresh, if the identity expires and a fresh token can be had. */
  _scheduleRefresh(socket, reply) {
    this._stopRefresh();
    const expiresIn = reply?.expires_in;
    if (typeof expiresIn !== "number" || !this._canRefresh()) return;
    const endsAt = this.now() + expiresIn * 1000;
    this._planRefresh(socket, endsAt);
  }

  _planRefresh(socket, endsAt) {
    const ahead = this.options.refreshAhead ?? 30000;
    this.refreshTimer = this.timers.setTimeout(() => {
      this.refreshTimer = null;
      this._refresh(socket, endsAt);
    }, refreshDelay(endsAt - this.now(), ahead));
  }

  /**
   * Send `__auth__` with a fresh token on `socket`. A failure (getToken threw, the gateway refused
   * or did not answer) is emitted as "error" and tried again halfway to the expiry, while there is time;
   * the gateway closes an identity that expires with 4003, after which the client reconnects with a fresh token.
   */
  async _refresh(socket, endsAt) {
    if (this.socket !== socket) return;
    try {
      const reply = await this._send(socket, { action: "__auth__", data: { token: await this._fetchToken() } });
      if (this.socket === socket) this._scheduleRefresh(socket, reply);
    } catch (error) {
      if (this.socket !== socket) return;
      this._emit("error", error);
      if (endsAt - this.now() > LAST_TRY_MS) this._planRefresh(socket, endsAt);
    }
  }

  _stopRefresh() {
    this.timers.clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  _receive(text) {
    this.heartbeat?.heard(this.now());
    const frame = classifyFrame(text);
    if (frame.kind === "event") {
      this._onEvent(frame);
    } else if (frame.kind === "presence") {
      this._onPresence(frame);
    } else if (frame.kind === "reply") {
      const stream = this.streams.get(frame.frame.request_id);
      if (stream !== undefined) {
        if (stream.push(frame.frame)) this.streams.delete(frame.frame.request_id);
        return;
      }
      const topic = this.subscribing.get(frame.frame.request_id);
      const data = frame.frame.data;
      if (topic !== undefined && data !== null && typeof data === "object" && typeof data.epoch === "string") {
        // the reply's position is where live events take over from replayed ones
        this.positions.set(topic, { epoch: data.epoch, offset: data.offset });
      }
      this.requests.settle(frame.frame);
    }
  }

  /** One event frame: the next offset is handed to the handlers; a duplicate is dropped; a hole is read or announced. */
  _onEvent(frame) {
    const held = this.held.get(frame.topic);
    if (held !== undefined) {
      held.push(frame); // a hole before it is being read from history
      return;
    }
    if (frame.gap !== undefined) {
      this._onGap(frame.topic, frame.epoch, frame.gap.from, frame.gap.to);
      return;
    }
    const meta = { topic: frame.topic };
    if (frame.offset !== undefined) {
      const last = this.positions.get(frame.topic);
      if (frame.epoch !== undefined && frame.epoch !== last?.epoch) {
        // the channel's history was lost (e.g. Redis restarted without persistence): events may be missing
        this.positions.set(frame.topic, { epoch: frame.epoch, offset: frame.offset });
        this._emit("recovery", { topic: frame.topic, recovered: false, epoch: frame.epoch, offset: frame.offset });
      } else if (last !== undefined) {
        if (frame.offset <= last.offset) return; // delivered already (replayed again after a reconnect)
        if (frame.offset > last.offset + 1) {
          this._fill(frame.topic, last, frame);
          return;
        }
        this.positions.set(frame.topic, { epoch: last.epoch, offset: frame.offset });
      }
      meta.offset = frame.offset;
    }
    for (const subscription of [...(this.subscriptions.get(frame.topic) ?? [])]) {
      try {
        subscription.handler(frame.data, { ...meta });
      } catch (error) {
        console.error("drizzle event handler failed", error);
      }
    }
  }

  /** A member's join or leave, or a stale notice: handed to the subscriptions of its topic that listen. */
  _onPresence(frame) {
    const callback = { join: "onJoin", leave: "onLeave", stale: "onStale" }[frame.presence];
    if (callback === undefined) return;
    const meta = frame.presence === "stale" ? { topic: frame.topic } : { topic: frame.topic, key: frame.key };
    for (const subscription of [...(this.subscriptions.get(frame.topic) ?? [])]) {
      const handler = subscription.attendance[callback];
      if (typeof handler !== "function") continue;
      try {
        if (frame.presence === "stale") handler(meta);
        else handler(frame.member, { ...meta });
      } catch (error) {
        console.error("drizzle presence handler failed", error);
      }
    }
  }

  /** Emit "gap" for the offsets `from`..`to` not delivered yet, and move the position past them. */
  _onGap(topic, epoch, from, to) {
    const last = this.positions.get(topic);
    if (last !== undefined && last.epoch === epoch) {
      if (to <= last.offset) return; // delivered already
      from = Math.max(from, last.offset + 1);
    }
    this.positions.set(topic, { epoch, offset: to });
    this._emit("gap", { topic, epoch, from, to });
  }

  /** An offset jumped past `last` without a gap notice: read the hole from history, then go on. */
  async _fill(topic, last, frame) {
    this.held.set(topic, [frame]);
    const data = { topic, since: { epoch: last.epoch, offset: last.offset }, limit: frame.offset - last.offset - 1 };
    const fields = [...(this.subscriptions.get(topic) ?? [])].at(-1)?.fields;
    if (fields !== undefined) data.fields = [...fields];
    let events = [];
    try {
      const page = await this.request({ action: "__history__", data });
      if (page?.epoch === last.epoch && Array.isArray(page.events)) {
        events = page.events.filter((event) => event.offset > last.offset && event.offset < frame.offset);
      }
    } catch (error) {
      console.warn(`drizzle: could not read offsets ${last.offset + 1}-${frame.offset - 1} of ${topic}`, error);
    }
    const held = this.held.get(topic) ?? [];
    this.held.delete(topic);
    for (const event of [...events, { offset: frame.offset }]) { // the last: where the held events start
      const now = this.positions.get(topic);
      if (now !== undefined && now.epoch === last.epoch && event.offset > now.offset + 1) {
        this._onGap(topic, last.epoch, now.offset + 1, event.offset - 1);
      }
      if ("data" in event) this._onEvent({ kind: "event", topic, data: event.data, offset: event.offset });
    }
    for (const waiting of held) this._onEvent(waiting);
  }

  /** The socket is gone (or declared dead): fail calls in flight, maybe reconnect. */
  _drop(socket, code, reason, wasReady) {
    if (this.socket !== socket) return;
    detach(socket);
    this.socket = null;
    this._stopHeartbeat();
    this._stopRefresh();
    const lost = new DrizzleError(ClientErrorCode.CONNECTION_LOST, `connection lost (close code ${code})`, { code, reason });
    this.retryLine.clear(lost);
    this.requests.failAll(lost);
    this._failStreams(lost);
    if (this.closedByUser) return;
    // A drop after being ready, or a failed attempt while reconnecting, leads to a retry;
    // a failed first connect does not (connect() rejects instead).
    const retrying = wasReady || this.state === "reconnecting";
    const willReconnect = retrying && this.options.reconnect !== false
      && shouldReconnect(code, { canRefresh: this._canRefresh() });
    if (wasReady) this._emit("close", { code, reason, willReconnect });
    if (willReconnect) {
      this._setState("reconnecting");
      this._scheduleRetry();
    } else {
      this._setState("closed");
    }
  }

  _failStreams(error) {
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const stream of streams) stream.fail(error);
  }

  _scheduleRetry() {
    const delay = backoffDelay(this.attempt, this.options.backoff);
    this.attempt += 1;
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.closedByUser) return;
      this._open().catch(() => {}); // a failed attempt schedules the next one
    }, delay);
  }

  _startHeartbeat() {
    if (this.options.heartbeatInterval === false) return;
    const tick = Math.max(50, Math.min(this.heartbeat.interval, this.heartbeat.timeout) / 4);
    const socket = this.socket;
    const beat = () => {
      if (this.socket !== socket) return;
      const decision = this.heartbeat.decide(this.now());
      if (decision === "ping") {
        this.heartbeat.pinged(this.now());
        this._send(socket, { action: "__ping__" }, this.heartbeat.timeout * 2).catch(() => {});
      } else if (decision === "dead") {
        try {
          socket.close(CloseCode.NORMAL, "heartbeat timeout");
        } catch {
          // the close handshake of a dead server never ends; do not wait for it
        }
        this._drop(socket, CloseCode.ABNORMAL, "heartbeat timeout", true);
        return;
      }
      this.heartbeatTimer = this.timers.setTimeout(beat, tick);
    };
    this.heartbeatTimer = this.timers.setTimeout(beat, tick);
  }

  _stopHeartbeat() {
    this.timers.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }
}

function isClientError(error) {
  return error instanceof DrizzleError && Object.values(ClientErrorCode).includes(error.code);
}

function subscribeData(topic, fields, since = undefined, group = undefined) {
  const data = { topic };
  if (fields !== undefined) data.fields = [...fields];
  if (since !== undefined) data.since = { epoch: since.epoch, offset: since.offset };
  // presence: the latest entry and member fields given win; joins and leaves while any subscription listens
  const asked = [...(group ?? [])].map((subscription) => subscription.attendance ?? {});
  const entry = asked.findLast((attendance) => attendance.presence !== undefined)?.presence;
  if (entry !== undefined) data.presence = entry;
  if (asked.some((attendance) => ["onJoin", "onLeave", "onStale"].some((name) => attendance[name] !== undefined))) {
    data.join_leave = true;
    const memberFields = asked.findLast((attendance) => attendance.memberFields !== undefined)?.memberFields;
    if (memberFields !== undefined) data.member_fields = [...memberFields];
  }
  return data;
}

function detach(socket) {
  socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
}

export default Drizzle;

/**
 * What the explorer remembers: the calls made (kept in the browser's `localStorage`,
 * per gateway, the newest `HISTORY_LIMIT`) and the raw frames of the connection (in
 * the page only, the newest `FRAME_LIMIT`). Tokens are never kept: the history holds
 * what was sent to an action, and `__auth__` calls are not recorded.
 *
 * Unit-tested under node with a stand-in storage (tests/js/explorer-store.test.mjs).
 * @module explorer-store
 */

export const HISTORY_LIMIT = 50;
export const FRAME_LIMIT = 200;
/** Frames longer than this are kept cut, with their full length noted. */
export const FRAME_TEXT_LIMIT = 4000;
const KEY = "drizzle-explorer:history";

/**
 * @typedef {Object} Entry one call, as the history keeps it
 * @property {number} at ms since the epoch
 * @property {string} gateway the websocket URL it was sent to
 * @property {string} key the sidebar key of what was called ("action:todos.create", "topic:chat.{room}")
 * @property {Object} frame the request frame without `request_id`
 * @property {string} outcome "ok" or the error code
 */

/** Calls made, newest first, in a `Storage` (`localStorage`), bounded. */
export class CallHistory {
  /**
   * @param {Storage|null} storage null (storage disabled): kept in memory for the page's life
   * @param {number} [limit]
   */
  constructor(storage, limit = HISTORY_LIMIT) {
    this.storage = storage;
    this.limit = limit;
    this.memory = [];
  }

  /** Every entry, newest first (an unreadable store reads as empty). */
  all() {
    if (!this.storage) return [...this.memory];
    try {
      const entries = JSON.parse(this.storage.getItem(KEY) ?? "[]");
      return Array.isArray(entries) ? entries.filter((entry) => entry && typeof entry.key === "string") : [];
    } catch {
      return [];
    }
  }

  /** The entries sent to `gateway`, newest first. */
  of(gateway) {
    return this.all().filter((entry) => entry.gateway === gateway);
  }

  /**
   * Keep `entry` first; the oldest go beyond `limit`. `__auth__` (a token) is never kept.
   * @param {Entry} entry
   * @returns {boolean} whether it was kept
   */
  add(entry) {
    if (entry.frame?.action === "__auth__") return false;
    this.write([entry, ...this.all()].slice(0, this.limit));
    return true;
  }

  /** Forget the entries of `gateway`. */
  clear(gateway) {
    this.write(this.all().filter((entry) => entry.gateway !== gateway));
  }

  write(entries) {
    if (!this.storage) {
      this.memory = entries;
      return;
    }
    for (let keep = entries.length; ; keep = Math.floor(keep / 2)) {
      try {
        this.storage.setItem(KEY, JSON.stringify(entries.slice(0, keep)));
        return;
      } catch {
        if (keep === 0) return; // storage refuses even that: nothing kept
      }
    }
  }
}

/**
 * @typedef {Object} FrameRecord
 * @property {number} at ms since the epoch
 * @property {"out"|"in"|"open"|"close"|"error"} direction
 * @property {string} text the frame (cut at FRAME_TEXT_LIMIT), or what happened
 * @property {number} length the frame's full length
 */

/** The newest frames of the connection, bounded; listeners hear each one. */
export class FrameLog {
  /** @param {number} [limit] */
  constructor(limit = FRAME_LIMIT) {
    this.limit = limit;
    /** @type {FrameRecord[]} oldest first */
    this.records = [];
    this.dropped = 0;
    this.listeners = new Set();
  }

  /**
   * Record one frame or connection event.
   * @param {FrameRecord["direction"]} direction
   * @param {string} text
   * @param {number} [at]
   */
  add(direction, text, at = Date.now()) {
    const full = String(text);
    const record = { at, direction, text: full.length > FRAME_TEXT_LIMIT ? full.slice(0, FRAME_TEXT_LIMIT) : full, length: full.length };
    this.records.push(record);
    if (this.records.length > this.limit) {
      this.dropped += this.records.length - this.limit;
      this.records.splice(0, this.records.length - this.limit);
    }
    for (const listener of this.listeners) listener(record);
  }

  /** Forget every record. */
  clear() {
    this.records = [];
    this.dropped = 0;
    for (const listener of this.listeners) listener(null);
  }

  /** Call `listener(record)` for each new record (`null` after `clear`); returns a function that stops it. */
  listen(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * A WebSocket class whose sockets record what they send and receive, how they open and
 * close, in `log`, while `live()` holds; drizzle.js takes it as its `WebSocket` option.
 * @param {typeof WebSocket} Base
 * @param {FrameLog} log
 * @param {{live?: () => boolean, closed?: (event: CloseEvent) => void}} [hooks]
 *   `live`: whether this connection is still the page's; `closed`: told every close
 * @returns {typeof WebSocket}
 */
export function recordingWebSocket(Base, log, hooks = {}) {
  const live = hooks.live ?? (() => true);
  return class RecordingWebSocket extends Base {
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener("open", () => {
        if (live()) log.add("open", `connected to ${url} (${this.protocol || "no subprotocol"})`);
      });
      this.addEventListener("message", (event) => {
        if (live()) log.add("in", event.data);
      });
      this.addEventListener("close", (event) => {
        if (!live()) return;
        log.add("close", closeText(event.code, event.reason));
        hooks.closed?.(event);
      });
    }

    send(data) {
      if (live()) log.add("out", data);
      super.send(data);
    }
  };
}

/** What the gateway's close codes mean (drizzle_gateway.wire.dialect.CloseCode). */
export const CLOSE_MEANINGS = Object.freeze({
  1000: "closed normally",
  1001: "the server is going away (shutting down)",
  1002: "the client broke the websocket protocol",
  1006: "the connection dropped without a close frame",
  1008: "control frames or fragments came too fast",
  1009: "a frame was too big",
  1011: "the server hit an internal error",
  4001: "not authenticated",
  4008: "too slow: the client did not read its frames",
});

/**
 * A close as one line: "4001 not authenticated: not authenticated in time".
 * @param {number} code
 * @param {string} [reason] the close frame's reason text
 * @returns {string}
 */
export function closeText(code, reason = "") {
  const meaning = CLOSE_MEANINGS[code] ?? "closed";
  return reason && reason !== meaning ? `${code} ${meaning}: ${reason}` : `${code} ${meaning}`;
}

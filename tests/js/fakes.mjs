// Test doubles for the browser's clock, timers and WebSocket, so the client's
// logic runs in node deterministically: time only moves when a test says so.

/** A manual clock with setTimeout/clearTimeout that fire on `advance(ms)`. */
export class FakeTime {
  constructor() {
    this.current = 0;
    this.nextHandle = 1;
    this.timers = new Map();
    this.now = () => this.current;
    this.setTimeout = (fn, ms) => {
      const handle = this.nextHandle++;
      this.timers.set(handle, { at: this.current + Math.max(0, ms), fn });
      return handle;
    };
    this.clearTimeout = (handle) => {
      this.timers.delete(handle);
    };
  }

  /** Move the clock forward, firing due timers in order. */
  async advance(ms) {
    const end = this.current + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at);
      if (due.length === 0) break;
      const [handle, timer] = due[0];
      this.timers.delete(handle);
      this.current = timer.at;
      timer.fn();
      await settle();
    }
    this.current = end;
    await settle();
  }
}

/** Let pending promise callbacks run. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Records every socket a client opens; the test plays the server. */
export class FakeServer {
  constructor() {
    this.sockets = [];
    const server = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url, protocols) {
        this.url = url;
        this.protocols = protocols;
        this.sent = [];
        this.closed = null;
        server.sockets.push(this);
      }

      send(text) {
        if (this.closed) throw new Error("socket is closed");
        this.sent.push(JSON.parse(text));
      }

      close(code, reason) {
        this.closed = { code, reason };
      }

      // -- what the server does --
      accept() {
        this.onopen?.({});
      }

      deliver(frame) {
        this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
      }

      drop(code, reason = "") {
        this.closed = { code, reason };
        this.onclose?.({ code, reason });
      }

      /** Answer the last request with `data` (or an error frame if `error` is given). */
      reply(data, error) {
        const request = this.sent.at(-1);
        this.deliver(error ? { request_id: request.request_id, ...error } : { request_id: request.request_id, data });
      }
    };
  }

  get last() {
    return this.sockets.at(-1);
  }
}

// What the explorer remembers: the bounded call history in localStorage and the bounded frame log.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CallHistory, closeText, FrameLog, FRAME_TEXT_LIMIT } from "../../drizzle_gateway/static/explorer-store.js";

class Storage {
  constructor(quota = Infinity) {
    this.items = new Map();
    this.quota = quota;
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    if (value.length > this.quota) throw new Error("QuotaExceededError");
    this.items.set(key, value);
  }
}

const entry = (n, gateway = "ws://a/ws") =>
  ({ at: n, gateway, key: "action:__ping__", frame: { action: "__ping__" }, outcome: "ok" });

test("the history keeps the newest calls first, at most its limit, per gateway", () => {
  const storage = new Storage();
  const history = new CallHistory(storage, 3);
  for (const n of [1, 2, 3, 4]) history.add(entry(n));
  history.add(entry(5, "ws://b/ws"));
  assert.deepEqual(history.all().map((e) => e.at), [5, 4, 3]);
  assert.deepEqual(history.of("ws://a/ws").map((e) => e.at), [4, 3]);
  assert.deepEqual(new CallHistory(storage, 3).of("ws://a/ws").map((e) => e.at), [4, 3], "read back from the storage");
  history.clear("ws://a/ws");
  assert.deepEqual(history.all().map((e) => e.at), [5]);
});

test("a token is never kept, an unreadable store reads as empty, a full one keeps fewer", () => {
  const storage = new Storage();
  const history = new CallHistory(storage);
  assert.equal(history.add({ ...entry(1), frame: { action: "__auth__", data: { token: "s3cret" } } }), false);
  assert.doesNotMatch(storage.getItem("drizzle-explorer:history") ?? "", /s3cret/);
  storage.setItem("drizzle-explorer:history", "{not json");
  assert.deepEqual(history.all(), []);
  const small = new CallHistory(new Storage(400));
  for (let n = 0; n < 10; n++) small.add(entry(n));
  assert.ok(small.all().length > 0 && small.all().length < 10, "some kept within the quota");
  assert.equal(small.all()[0].at, 9, "the newest first");
  const memory = new CallHistory(null);
  memory.add(entry(1));
  assert.equal(memory.all().length, 1, "without storage, kept for the page");
});

test("the frame log keeps its newest records, cuts long frames and tells its listeners", () => {
  const log = new FrameLog(2);
  const heard = [];
  log.listen((record) => heard.push(record?.direction ?? null));
  log.add("out", "a", 1);
  log.add("in", "b", 2);
  log.add("in", "x".repeat(FRAME_TEXT_LIMIT + 10), 3);
  assert.deepEqual(log.records.map((r) => r.at), [2, 3]);
  assert.equal(log.dropped, 1);
  assert.equal(log.records[1].text.length, FRAME_TEXT_LIMIT);
  assert.equal(log.records[1].length, FRAME_TEXT_LIMIT + 10);
  log.clear();
  assert.deepEqual(heard, ["out", "in", "in", null]);
  assert.equal(log.records.length, 0);
});

test("a close reads as its code, its meaning and the server's reason", () => {
  assert.equal(closeText(4001, "not authenticated in time"), "4001 not authenticated: not authenticated in time");
  assert.equal(closeText(1006, ""), "1006 the connection dropped without a close frame");
  assert.equal(closeText(4999, "custom"), "4999 closed: custom");
});

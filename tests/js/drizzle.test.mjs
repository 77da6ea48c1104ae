// Unit tests of drizzle.js's pure logic and its connection life, run with `node --test tests/js/`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  backoffDelay,
  classifyFrame,
  CloseCode,
  Drizzle,
  DrizzleError,
  Heartbeat,
  RequestTracker,
  resolveWebsocketUrl,
  shouldReconnect,
} from "../../drizzle_gateway/static/drizzle.js";
import { FakeServer, FakeTime, settle } from "./fakes.mjs";

describe("backoffDelay", () => {
  test("the cap doubles per attempt up to max", () => {
    const noJitter = { initial: 100, max: 1000, factor: 2, jitter: 0 };
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, noJitter)), [100, 200, 400, 800, 1000, 1000]);
  });

  test("jitter spreads the delay between (1 - jitter) * cap and cap", () => {
    const options = { initial: 1000, max: 60000, jitter: 0.5 };
    assert.equal(backoffDelay(3, options, () => 0), 4000);
    assert.equal(backoffDelay(3, options, () => 0.5), 6000);
    assert.ok(backoffDelay(3, options, () => 0.999999) < 8000);
    const full = { initial: 1000, jitter: 1 };
    assert.equal(backoffDelay(2, full, () => 0), 0);
  });

  test("real randomness stays in bounds and differs between clients", () => {
    const delays = Array.from({ length: 200 }, () => backoffDelay(4, { initial: 500, max: 30000 }));
    for (const delay of delays) assert.ok(delay >= 4000 && delay <= 8000, String(delay));
    assert.ok(new Set(delays).size > 100);
  });
});

describe("resolveWebsocketUrl", () => {
  test("ws:// and wss:// URLs are kept as they are", () => {
    assert.equal(resolveWebsocketUrl("ws://127.0.0.1:8888/ws", "https://example.com/"), "ws://127.0.0.1:8888/ws");
    assert.equal(resolveWebsocketUrl("WSS://example.com", "http://example.com/"), "WSS://example.com");
  });

  test("a path follows the page's scheme: https pages connect over wss", () => {
    assert.equal(resolveWebsocketUrl("/ws", "https://example.com/app/page?x=1"), "wss://example.com/ws");
    assert.equal(resolveWebsocketUrl("/ws", "http://127.0.0.1:8888/"), "ws://127.0.0.1:8888/ws");
    assert.equal(resolveWebsocketUrl("ws", "https://example.com/prefix/"), "wss://example.com/prefix/ws");
    assert.equal(resolveWebsocketUrl("https://example.com:8443/ws"), "wss://example.com:8443/ws");
  });

  test("the page's address is the default base, and a path without a page is an error", () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, "location");
    try {
      Object.defineProperty(globalThis, "location", { value: { href: "https://example.com/" }, configurable: true });
      assert.equal(resolveWebsocketUrl("/ws"), "wss://example.com/ws");
      assert.equal(new Drizzle("/ws", { WebSocket: class {} }).url, "wss://example.com/ws");
    } finally {
      if (saved) Object.defineProperty(globalThis, "location", saved);
      else delete globalThis.location;
    }
    assert.throws(() => resolveWebsocketUrl("/ws"), TypeError);
  });
});

describe("shouldReconnect follows the gateway's close-code table", () => {
  const table = [
    [CloseCode.NORMAL, false],
    [CloseCode.GOING_AWAY, true],
    [CloseCode.ABNORMAL, true],
    [CloseCode.MESSAGE_TOO_BIG, false],
    [CloseCode.INTERNAL_ERROR, true],
    [CloseCode.SERVICE_RESTART, true],
    [CloseCode.UNAUTHENTICATED, false],
    [CloseCode.SLOW_CONSUMER, true],
  ];
  for (const [code, expected] of table) {
    test(`${code} -> ${expected ? "reconnect" : "stay closed"}`, () => assert.equal(shouldReconnect(code), expected));
  }
});

describe("RequestTracker", () => {
  test("ids are unique and replies settle the request they name, in any order", async () => {
    const time = new FakeTime();
    const tracker = new RequestTracker(time);
    const a = tracker.open(1000);
    const b = tracker.open(1000);
    assert.notEqual(a.id, b.id);
    assert.equal(tracker.settle({ request_id: b.id, data: "B" }), true);
    assert.equal(tracker.settle({ request_id: a.id, data: { x: 1 } }), true);
    assert.deepEqual(await a.promise, { x: 1 });
    assert.equal(await b.promise, "B");
    assert.equal(tracker.size, 0);
    assert.equal(time.timers.size, 0, "timeouts are cleared once answered");
  });

  test("an error frame rejects with a DrizzleError carrying code, message and details", async () => {
    const tracker = new RequestTracker(new FakeTime());
    const { id, promise } = tracker.open(1000);
    tracker.settle({ request_id: id, code: "INVALID_DATA", error: "bad", details: { title: ["required"] } });
    await assert.rejects(promise, (error) => {
      assert.ok(error instanceof DrizzleError);
      assert.equal(error.code, "INVALID_DATA");
      assert.equal(error.message, "bad");
      assert.deepEqual(error.details, { title: ["required"] });
      return true;
    });
  });

  test("unknown and late replies are ignored", async () => {
    const time = new FakeTime();
    const tracker = new RequestTracker(time);
    const { id, promise } = tracker.open(50);
    assert.equal(tracker.settle({ request_id: 999, data: 1 }), false);
    const rejected = assert.rejects(promise, { code: "TIMEOUT" });
    await time.advance(50);
    await rejected;
    assert.equal(tracker.settle({ request_id: id, data: "late" }), false);
  });

  test("a request without reply rejects with TIMEOUT only after its delay", async () => {
    const time = new FakeTime();
    const tracker = new RequestTracker(time);
    const { promise } = tracker.open(10000);
    let outcome = null;
    promise.catch((error) => (outcome = error));
    await time.advance(9999);
    assert.equal(outcome, null);
    await time.advance(1);
    assert.equal(outcome.code, "TIMEOUT");
  });

  test("failAll rejects everything in flight", async () => {
    const tracker = new RequestTracker(new FakeTime());
    const requests = [tracker.open(1000), tracker.open(1000)];
    tracker.failAll(new DrizzleError("CONNECTION_LOST", "gone"));
    for (const { promise } of requests) await assert.rejects(promise, { code: "CONNECTION_LOST" });
    assert.equal(tracker.size, 0);
  });
});

describe("Heartbeat", () => {
  test("pings after silence, waits for the pong, declares the server dead without one", () => {
    const beat = new Heartbeat({ interval: 1000, timeout: 500 }, 0);
    assert.equal(beat.decide(999), "wait");
    assert.equal(beat.decide(1000), "ping");
    beat.pinged(1000);
    assert.equal(beat.decide(1499), "wait");
    assert.equal(beat.decide(1500), "dead");
  });

  test("any frame counts as a sign of life", () => {
    const beat = new Heartbeat({ interval: 1000, timeout: 500 }, 0);
    beat.heard(800);
    assert.equal(beat.decide(1700), "wait");
    beat.pinged(1800);
    beat.heard(1900);
    assert.equal(beat.decide(2600), "wait");
    assert.equal(beat.decide(2900), "ping");
  });
});

test("classifyFrame tells events from replies and junk", () => {
  assert.deepEqual(classifyFrame('{"topic":"chat.a","data":{"t":1}}'), { kind: "event", topic: "chat.a", data: { t: 1 } });
  assert.equal(classifyFrame('{"request_id":3,"data":1}').kind, "reply");
  assert.equal(classifyFrame('{"request_id":3,"topic":"x"}').kind, "reply");
  for (const junk of ["not json", "[]", "null", '{"hello":1}']) assert.equal(classifyFrame(junk).kind, "junk");
});

// -- the client over a fake socket ----------------------------------------------

async function connected(options = {}) {
  const time = new FakeTime();
  const server = new FakeServer();
  const pending = Drizzle.connect("ws://test/ws", {
    WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false, ...options,
  });
  server.last.accept();
  const dz = await pending;
  const events = [];
  for (const type of ["open", "close", "reconnect"]) dz.on(type, (detail) => events.push([type, detail]));
  return { dz, time, server, events };
}

describe("Drizzle over a fake socket", () => {
  test("asks for the drizzle.v1 subprotocol and matches replies to calls", async () => {
    const { dz, server } = await connected();
    assert.deepEqual(server.last.protocols, ["drizzle.v1"]);
    const first = dz.call("todos", "create", { title: "milk" }, { fields: ["id"] });
    const second = dz.call("todos", "list");
    const [a, b] = server.last.sent;
    assert.deepEqual(a, { request_id: a.request_id, resource: "todos", action: "create", data: { title: "milk" }, fields: ["id"] });
    server.last.deliver({ request_id: b.request_id, data: [] });
    server.last.deliver({ request_id: a.request_id, data: { id: 1 } });
    assert.deepEqual(await first, { id: 1 });
    assert.deepEqual(await second, []);
  });

  test("a call without reply times out after the configured delay", async () => {
    const { dz, time } = await connected({ timeout: 2000 });
    const call = dz.call("lab", "sleep", { seconds: 9, tag: "x" });
    let error = null;
    call.catch((e) => (error = e));
    await time.advance(1999);
    assert.equal(error, null);
    await time.advance(1);
    assert.equal(error.code, "TIMEOUT");
  });

  test("events reach every local subscription of their topic until unsubscribed", async () => {
    const { dz, server } = await connected();
    const seen = [];
    const subscribing = dz.subscribe("chat.lobby", (data, meta) => seen.push([meta.topic, data]), { fields: ["text"] });
    assert.deepEqual(server.last.sent.at(-1).data, { topic: "chat.lobby", fields: ["text"] });
    server.last.deliver({ topic: "chat.lobby", data: { text: "early" } }); // before the reply: kept
    server.last.reply({ topic: "chat.lobby" });
    const sub = await subscribing;
    server.last.deliver({ topic: "chat.other", data: { text: "not mine" } });
    server.last.deliver({ topic: "chat.lobby", data: { text: "hi" } });
    assert.deepEqual(seen, [["chat.lobby", { text: "early" }], ["chat.lobby", { text: "hi" }]]);
    const leaving = sub.unsubscribe();
    assert.deepEqual(server.last.sent.at(-1), { request_id: server.last.sent.at(-1).request_id, action: "__unsubscribe__", data: { topic: "chat.lobby" } });
    server.last.reply({ topic: "chat.lobby" });
    await leaving;
    server.last.deliver({ topic: "chat.lobby", data: { text: "after" } });
    assert.equal(seen.length, 2);
  });

  test("a refused subscription rejects and keeps nothing", async () => {
    const { dz, server } = await connected();
    const subscribing = dz.subscribe("nope", () => assert.fail("no events expected"));
    server.last.reply(null, { code: "TOPIC_NOT_FOUND", error: "topic 'nope' is not declared" });
    await assert.rejects(subscribing, { code: "TOPIC_NOT_FOUND" });
    assert.equal(dz.subscriptions.size, 0);
  });

  test("after 1012 (a server drained for a restart) it reconnects after a jittered delay", async () => {
    const realRandom = Math.random;
    Math.random = () => 0.5;
    try {
      const { dz, time, server, events } = await connected({ backoff: { initial: 1000, jitter: 0.5 } });
      const inFlight = dz.call("todos", "list");
      server.last.drop(CloseCode.SERVICE_RESTART, "server restarting");
      await assert.rejects(inFlight, { code: "CONNECTION_LOST" });
      assert.deepEqual(events, [["close", { code: 1012, reason: "server restarting", willReconnect: true }]]);
      assert.equal(dz.state, "reconnecting");
      await time.advance(749);
      assert.equal(server.sockets.length, 1, "waits 500 ms plus the random share of the other 500 ms");
      await time.advance(1);
      assert.equal(server.sockets.length, 2);
      server.last.accept();
      await settle();
      assert.equal(dz.state, "open");
    } finally {
      Math.random = realRandom;
    }
  });

  test("after 1001 it rejects calls in flight, reconnects with backoff and re-subscribes", async () => {
    const { dz, time, server, events } = await connected({ backoff: { initial: 1000, jitter: 0 } });
    const subscribing = dz.subscribe("chat.lobby", () => {}, { fields: ["author"] });
    server.last.reply({ topic: "chat.lobby" });
    await subscribing;
    const inFlight = dz.call("todos", "list");
    server.last.drop(CloseCode.GOING_AWAY, "server shutting down");
    await assert.rejects(inFlight, { code: "CONNECTION_LOST" });
    assert.equal(dz.state, "reconnecting");
    await assert.rejects(dz.call("todos", "list"), { code: "NOT_CONNECTED" });
    assert.deepEqual(events, [["close", { code: 1001, reason: "server shutting down", willReconnect: true }]]);

    await time.advance(999);
    assert.equal(server.sockets.length, 1, "waits for the backoff delay");
    await time.advance(1);
    assert.equal(server.sockets.length, 2);
    server.last.drop(CloseCode.ABNORMAL); // the server is not back yet
    await time.advance(1999);
    assert.equal(server.sockets.length, 2, "the second delay is twice the first");
    await time.advance(1);
    assert.equal(server.sockets.length, 3);

    server.last.accept();
    await settle();
    const resubscribe = server.last.sent.at(-1);
    assert.deepEqual(resubscribe.data, { topic: "chat.lobby", fields: ["author"] });
    assert.equal(resubscribe.action, "__subscribe__");
    assert.equal(dz.state, "reconnecting", "not open before re-subscribed");
    server.last.reply({ topic: "chat.lobby" });
    await settle();
    assert.equal(dz.state, "open");
    assert.deepEqual(events.slice(1).map(([type]) => type), ["open", "reconnect"]);
    // the backoff starts over after a success
    server.last.drop(CloseCode.INTERNAL_ERROR);
    await time.advance(1000);
    assert.equal(server.sockets.length, 4);
  });

  for (const code of [CloseCode.NORMAL, CloseCode.MESSAGE_TOO_BIG, CloseCode.UNAUTHENTICATED]) {
    test(`after close code ${code} it stays closed`, async () => {
      const { dz, time, server, events } = await connected();
      server.last.drop(code);
      await time.advance(120000);
      assert.equal(server.sockets.length, 1);
      assert.equal(dz.state, "closed");
      assert.deepEqual(events, [["close", { code, reason: "", willReconnect: false }]]);
    });
  }

  test("heartbeat: pings a silent server and replaces a dead one", async () => {
    const { dz, time, server } = await connected({
      heartbeatInterval: 1000, heartbeatTimeout: 500, backoff: { initial: 100, jitter: 0 },
    });
    await time.advance(1000);
    const ping = server.last.sent.at(-1);
    assert.equal(ping.action, "__ping__");
    server.last.reply("pong");
    await time.advance(900);
    assert.equal(server.last.sent.length, 1, "no ping while the server talks");
    await time.advance(500);
    assert.equal(server.last.sent.at(-1).action, "__ping__");
    await time.advance(500); // no pong: dead
    assert.equal(dz.state, "reconnecting");
    assert.ok(server.sockets[0].closed, "the dead socket is closed");
    await time.advance(100);
    assert.equal(server.sockets.length, 2);
  });

  test("close() ends for good and rejects calls in flight", async () => {
    const { dz, time, server } = await connected();
    const call = dz.call("todos", "list");
    dz.close();
    await assert.rejects(call, { code: "CLOSED" });
    assert.equal(server.last.closed.code, 1000);
    await time.advance(60000);
    assert.equal(server.sockets.length, 1);
    await assert.rejects(dz.call("todos", "list"), { code: "CLOSED" });
  });

  test("a first connection that fails rejects connect()", async () => {
    const server = new FakeServer();
    const time = new FakeTime();
    const pending = Drizzle.connect("ws://test/ws", { WebSocket: server.WebSocket, timers: time, now: time.now });
    server.last.drop(CloseCode.ABNORMAL);
    await assert.rejects(pending, { code: "NOT_CONNECTED" });
    await time.advance(60000);
    assert.equal(server.sockets.length, 1);
  });

  test("a token is sent with __auth__ before the connection counts as open", async () => {
    const server = new FakeServer();
    const time = new FakeTime();
    const pending = Drizzle.connect("ws://test/ws", {
      WebSocket: server.WebSocket, timers: time, now: time.now, token: () => "s3cret", heartbeatInterval: false,
    });
    server.last.accept();
    await settle();
    assert.deepEqual(server.last.sent[0].data, { token: "s3cret" });
    assert.equal(server.last.sent[0].action, "__auth__");
    server.last.reply({ user: "ada" });
    const dz = await pending;
    assert.equal(dz.state, "open");
  });

  test("a refused token rejects connect() with the server's code and does not retry", async () => {
    const server = new FakeServer();
    const time = new FakeTime();
    const pending = Drizzle.connect("ws://test/ws", { WebSocket: server.WebSocket, timers: time, now: time.now, token: "bad" });
    server.last.accept();
    await settle();
    server.last.reply(null, { code: "UNAUTHENTICATED", error: "bad token" });
    await assert.rejects(pending, { code: "UNAUTHENTICATED" });
    await time.advance(60000);
    assert.equal(server.sockets.length, 1);
  });
});

// drizzle.js retries what is safe to retry after a transient refusal, and re-subscribes
// everything after a reconnect. Run with `node --test tests/js/`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  CloseCode, Drizzle, DrizzleError, isConnectionLoss, isRetryable, newIdempotencyKey, retryDelay,
} from "../../drizzle_gateway/static/drizzle.js";
import { FakeServer, FakeTime, settle } from "./fakes.mjs";

const rateLimited = (seconds) => ({ code: "RATE_LIMITED", error: "too many requests; slow down", details: { retry_after: seconds } });

async function connected(options = {}) {
  const time = new FakeTime();
  const server = new FakeServer();
  const pending = Drizzle.connect("ws://test/ws", {
    WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false, ...options,
  });
  server.last.accept();
  const dz = await pending;
  const errors = [];
  dz.on("error", (error) => errors.push(error));
  return { dz, time, server, errors };
}

/** Answer one request frame by its id. */
function answer(socket, request, data, error) {
  socket.deliver(error ? { request_id: request.request_id, ...error } : { request_id: request.request_id, data });
}

/** Answer one request, then let the client react before time moves on. */
async function answered(socket, request, data, error) {
  answer(socket, request, data, error);
  await settle();
}

/** How a promise ended so far: "pending", ["resolved", value] or ["rejected", error]. */
function track(promise) {
  const state = { outcome: "pending" };
  promise.then((value) => (state.outcome = ["resolved", value]), (error) => (state.outcome = ["rejected", error]));
  return state;
}

describe("retryDelay and isRetryable", () => {
  test("RATE_LIMITED waits retry_after seconds", () => {
    assert.equal(retryDelay(new DrizzleError("RATE_LIMITED", "slow down", { retry_after: 0.25 })), 250);
    assert.equal(retryDelay(new DrizzleError("RATE_LIMITED", "slow down", { retry_after: 0 })), 0);
  });

  test("every other refusal, and a wait above maxDelay, is final", () => {
    const final = [
      new DrizzleError("LIMIT_EXCEEDED", "full", { limit: "max_subscriptions", max: 100 }),
      new DrizzleError("FORBIDDEN", "no"),
      new DrizzleError("TOPIC_NOT_FOUND", "no such topic"),
      new DrizzleError("TIMEOUT", "no reply"),
      new DrizzleError("RATE_LIMITED", "no hint"),
      new DrizzleError("RATE_LIMITED", "bad hint", { retry_after: "soon" }),
      new DrizzleError("RATE_LIMITED", "bad hint", { retry_after: -1 }),
      new Error("not from the server"),
    ];
    for (const error of final) assert.equal(retryDelay(error), null, `${error.code}: ${error.message}`);
    assert.equal(retryDelay(new DrizzleError("RATE_LIMITED", "long", { retry_after: 11 })), null);
    assert.equal(retryDelay(new DrizzleError("RATE_LIMITED", "long", { retry_after: 11 }), 20000), 11000);
  });

  test("only the idempotent built-in actions are retryable", () => {
    for (const action of ["__subscribe__", "__unsubscribe__", "__ping__", "__schema__"]) {
      assert.equal(isRetryable({ action }), true, action);
    }
    for (const frame of [{ action: "__publish__" }, { action: "__auth__" }, { resource: "todos", action: "list" },
      { resource: "todos", action: "__ping__" }]) {
      assert.equal(isRetryable(frame), false, JSON.stringify(frame));
    }
  });
});

describe("a request refused with RATE_LIMITED", () => {
  const safe = [
    ["subscribe", (dz) => dz.subscribe("chat.a", () => {}), "__subscribe__", { topic: "chat.a" }],
    ["ping", (dz) => dz.ping(), "__ping__", "pong"],
    ["schema", (dz) => dz.schema(), "__schema__", { title: "t" }],
  ];
  for (const [name, start, action, reply] of safe) {
    test(`${name} is sent again after retry_after, and resolves`, async () => {
      const { dz, time, server } = await connected();
      const call = track(start(dz));
      const first = server.last.sent.at(-1);
      assert.equal(first.action, action);
      await answered(server.last, first, null, rateLimited(0.25));
      await time.advance(249);
      assert.equal(server.last.sent.length, 1, "not before retry_after");
      assert.equal(call.outcome, "pending");
      await time.advance(1);
      assert.equal(server.last.sent.length, 2);
      const again = server.last.sent[1];
      assert.notEqual(again.request_id, first.request_id);
      assert.deepEqual({ ...again, request_id: 0 }, { ...first, request_id: 0 });
      answer(server.last, again, reply);
      await settle();
      assert.equal(call.outcome[0], "resolved");
      if (name === "subscribe") {
        assert.equal(dz.subscriptions.size, 1);
        assert.equal(call.outcome[1].active, true);
      } else {
        assert.deepEqual(call.outcome[1], reply);
      }
    });
  }

  test("unsubscribe is sent again after retry_after", async () => {
    const { dz, time, server } = await connected();
    const subscribing = dz.subscribe("chat.a", () => {});
    server.last.reply({ topic: "chat.a" });
    const sub = await subscribing;
    const leaving = track(sub.unsubscribe());
    await answered(server.last, server.last.sent.at(-1), null, rateLimited(0.5));
    await time.advance(500);
    const again = server.last.sent.at(-1);
    assert.equal(server.last.sent.length, 3);
    assert.deepEqual(again.data, { topic: "chat.a" });
    assert.equal(again.action, "__unsubscribe__");
    answer(server.last, again, { topic: "chat.a" });
    await settle();
    assert.deepEqual(leaving.outcome, ["resolved", undefined]);
  });

  const unsafe = [
    ["publish", (dz) => dz.publish("chat.a", { text: "hi" })],
    ["an application action", (dz) => dz.call("todos", "create", { title: "milk" })],
  ];
  for (const [name, start] of unsafe) {
    test(`${name} is not sent again: it rejects with RATE_LIMITED`, async () => {
      const { dz, time, server } = await connected();
      const call = start(dz);
      server.last.reply(null, rateLimited(0.1));
      await assert.rejects(call, (error) => {
        assert.equal(error.code, "RATE_LIMITED");
        assert.deepEqual(error.details, { retry_after: 0.1 });
        return true;
      });
      await time.advance(60000);
      assert.equal(server.last.sent.length, 1);
    });
  }

  test("a final refusal after a retry rejects with its own code and keeps nothing", async () => {
    const { dz, time, server } = await connected();
    const subscribing = dz.subscribe("nope", () => {});
    server.last.reply(null, rateLimited(0.1));
    await settle();
    await time.advance(100);
    server.last.reply(null, { code: "TOPIC_NOT_FOUND", error: "topic 'nope' is not declared" });
    await assert.rejects(subscribing, { code: "TOPIC_NOT_FOUND" });
    assert.equal(dz.subscriptions.size, 0);
    await time.advance(60000);
    assert.equal(server.last.sent.length, 2);
  });

  test("retries are bounded: `retries` times, and never for a wait above maxRetryDelay", async () => {
    const { dz, time, server } = await connected({ retries: 2, maxRetryDelay: 5000 });
    const pinging = track(dz.ping());
    for (let sent = 1; sent <= 3; sent++) {
      assert.equal(server.last.sent.length, sent);
      server.last.reply(null, rateLimited(1));
      await settle();
      await time.advance(1000);
    }
    assert.equal(pinging.outcome[0], "rejected");
    assert.equal(pinging.outcome[1].code, "RATE_LIMITED");
    assert.equal(server.last.sent.length, 3, "one send and two retries");

    const patient = track(dz.ping());
    server.last.reply(null, rateLimited(6));
    await settle();
    assert.equal(patient.outcome[0], "rejected", "a 6 s wait is above maxRetryDelay: no retry");
    await time.advance(60000);
    assert.equal(server.last.sent.length, 4);
  });

  test("retries go single file, one per retry_after, so they do not crowd the server", async () => {
    const { dz, time, server } = await connected();
    const topics = ["chat.a", "chat.b", "chat.c"];
    const calls = topics.map((topic) => track(dz.subscribe(topic, () => {})));
    for (const request of [...server.last.sent]) answer(server.last, request, null, rateLimited(0.2));
    await settle();
    const retriedAt = [];
    for (let step = 0; step < 12 && retriedAt.length < 3; step++) {
      const before = server.last.sent.length;
      await time.advance(100);
      for (const request of server.last.sent.slice(before)) {
        retriedAt.push(time.now());
        await answered(server.last, request, { topic: request.data.topic });
      }
    }
    assert.deepEqual(retriedAt, [200, 400, 600]);
    await settle();
    assert.deepEqual(calls.map((call) => call.outcome[0]), ["resolved", "resolved", "resolved"]);
  });

  test("a drop while a retry waits rejects it with CONNECTION_LOST at once, and it is not sent again", async () => {
    const { dz, time, server } = await connected({ backoff: { initial: 100, jitter: 0 } });
    const pinging = track(dz.ping());
    server.last.reply(null, rateLimited(5));
    await settle();
    server.last.drop(CloseCode.GOING_AWAY);
    await settle();
    assert.equal(pinging.outcome[0], "rejected");
    assert.equal(pinging.outcome[1].code, "CONNECTION_LOST");
    await time.advance(100);
    server.last.accept();
    await time.advance(10000);
    assert.equal(server.sockets[0].sent.length, 1);
    assert.equal(server.last.sent.length, 0);
    assert.equal(dz.state, "open");
  });
});

// -- re-subscribing after a reconnect -------------------------------------------

/** Subscribe to `topics`, each answered at once; returns the events each topic's handler saw. */
async function subscribeAll(dz, server, topics) {
  const seen = new Map(topics.map((topic) => [topic, []]));
  for (const topic of topics) {
    const subscribing = dz.subscribe(topic, (data) => seen.get(topic).push(data));
    server.last.reply({ topic });
    await subscribing;
  }
  return seen;
}

/** Restart the fake server: drop the socket and accept the client's next one. */
async function restart(server, time) {
  server.last.drop(CloseCode.ABNORMAL);
  await time.advance(100);
  server.last.accept();
  await settle();
  return server.last;
}

describe("re-subscribing after a reconnect", () => {
  test("60 subscriptions all come back although some are first refused with RATE_LIMITED", async () => {
    const { dz, time, server, errors } = await connected({ backoff: { initial: 100, jitter: 0 } });
    const topics = Array.from({ length: 60 }, (_, i) => `chat.room${i}`);
    const seen = await subscribeAll(dz, server, topics);
    const reconnects = [];
    dz.on("reconnect", () => reconnects.push(time.now()));

    const socket = await restart(server, time);
    // the server plays a token bucket: 20 requests pass, then one per 50 ms
    let tokens = 20;
    let refillAt = time.now() + 50;
    let answered = 0;
    let mostInFlight = 0;
    const refusedAt = new Map();
    for (let step = 0; step < 2000 && dz.state !== "open"; step++) {
      const fresh = socket.sent.slice(answered);
      mostInFlight = Math.max(mostInFlight, fresh.length);
      for (const request of fresh) {
        answered += 1;
        assert.equal(request.action, "__subscribe__");
        const topic = request.data.topic;
        if (refusedAt.has(topic)) assert.ok(time.now() >= refusedAt.get(topic) + 50, `${topic} retried too early`);
        if (tokens > 0) {
          tokens -= 1;
          answer(socket, request, { topic });
        } else {
          refusedAt.set(topic, time.now());
          answer(socket, request, null, rateLimited((refillAt - time.now()) / 1000));
        }
      }
      await settle();
      if (socket.sent.length === answered) {
        await time.advance(10);
        if (time.now() >= refillAt) {
          tokens = 1;
          refillAt += 50;
        }
      }
    }
    assert.equal(dz.state, "open");
    assert.equal(reconnects.length, 1);
    assert.deepEqual(errors, []);
    assert.ok(refusedAt.size >= 4, `the test's server refused only ${refusedAt.size} subscriptions`);
    assert.ok(socket.sent.length <= 60 + 2 * refusedAt.size, `${socket.sent.length} requests for 60 subscriptions`);
    assert.ok(mostInFlight <= 8, `${mostInFlight} subscribes in flight at once`);
    const resubscribed = new Set(socket.sent.map((request) => request.data.topic));
    assert.equal(resubscribed.size, 60);
    assert.equal(dz.subscriptions.size, 60);
    for (const topic of topics) socket.deliver({ topic, data: { text: `to ${topic}` } });
    for (const topic of topics) assert.deepEqual(seen.get(topic), [{ text: `to ${topic}` }], topic);
  });

  test("a subscription refused for good is reported as an error event and ends; the others stay", async () => {
    const { dz, time, server, errors } = await connected({ backoff: { initial: 100, jitter: 0 } });
    await subscribeAll(dz, server, ["chat.a", "secret", "chat.b"]);
    const socket = await restart(server, time);
    for (const request of [...socket.sent]) {
      if (request.data.topic === "secret") answer(socket, request, null, { code: "FORBIDDEN", error: "not for you" });
      else answer(socket, request, { topic: request.data.topic });
    }
    await settle();
    assert.equal(dz.state, "open");
    assert.deepEqual(errors.map((error) => error.code), ["FORBIDDEN"]);
    assert.deepEqual([...dz.subscriptions.keys()], ["chat.a", "chat.b"]);
  });

  test("a re-subscribe without reply reconnects again and keeps every subscription", async () => {
    const { dz, time, server, errors } = await connected({ backoff: { initial: 100, jitter: 0 }, timeout: 1000 });
    await subscribeAll(dz, server, ["chat.a", "chat.b"]);
    const socket = await restart(server, time);
    answer(socket, socket.sent[0], { topic: "chat.a" }); // chat.b gets no reply
    await time.advance(1000);
    assert.ok(socket.closed, "the silent socket is given up");
    assert.equal(dz.state, "reconnecting");
    await time.advance(200); // the second attempt's backoff
    assert.equal(server.sockets.length, 3);
    server.last.accept();
    await settle();
    for (const request of [...server.last.sent]) answer(server.last, request, { topic: request.data.topic });
    await settle();
    assert.equal(dz.state, "open");
    assert.deepEqual(errors, []);
    assert.deepEqual([...dz.subscriptions.keys()], ["chat.a", "chat.b"]);
  });
});

describe("a publish carries an idempotency key and is sent again with it after a reconnect", () => {
  test("each publish gets a fresh random key of the documented form", async () => {
    const { dz, server } = await connected();
    const first = track(dz.publish("chat.a", { text: "1" }));
    const firstFrame = server.last.sent.at(-1);
    answer(server.last, firstFrame, { topic: "chat.a", duplicate: false });
    const second = track(dz.publish("chat.a", { text: "2" }));
    const secondFrame = server.last.sent.at(-1);
    answer(server.last, secondFrame, { topic: "chat.a", duplicate: false });
    await settle();
    assert.deepEqual(first.outcome, ["resolved", { topic: "chat.a", duplicate: false }]);
    assert.equal(second.outcome[0], "resolved");
    for (const frame of [firstFrame, secondFrame]) {
      assert.equal(frame.action, "__publish__");
      assert.match(frame.data.idempotency_key, /^[0-9a-f]{32}$/);
    }
    assert.notEqual(firstFrame.data.idempotency_key, secondFrame.data.idempotency_key);
    assert.match(newIdempotencyKey(), /^[0-9a-f]{32}$/);
  });

  test("a publish whose connection drops before the reply is sent again, same key, once reconnected", async () => {
    const { dz, time, server } = await connected({ backoff: { initial: 100, jitter: 0 } });
    const publishing = track(dz.publish("chat.a", { text: "hi" }, { idempotencyKey: "k-1" }));
    const sent = server.last.sent.at(-1);
    assert.deepEqual(sent.data, { topic: "chat.a", payload: { text: "hi" }, idempotency_key: "k-1" });
    server.last.drop(CloseCode.ABNORMAL); // between the server's publish and its reply
    await settle();
    assert.equal(publishing.outcome, "pending", "waits for the next connection");
    await time.advance(100);
    server.last.accept();
    await settle();
    const again = server.last.sent.at(-1);
    assert.equal(again.action, "__publish__");
    assert.deepEqual(again.data, sent.data);
    assert.notEqual(again.request_id, undefined);
    answer(server.last, again, { topic: "chat.a", duplicate: true });
    await settle();
    assert.deepEqual(publishing.outcome, ["resolved", { topic: "chat.a", duplicate: true }]);
    assert.equal(server.sockets.length, 2);
  });

  test("a publish made while reconnecting is sent once the connection is back", async () => {
    const { dz, time, server } = await connected({ backoff: { initial: 100, jitter: 0 } });
    server.last.drop(CloseCode.ABNORMAL);
    const publishing = track(dz.publish("chat.a", { text: "hi" }));
    await time.advance(100);
    server.last.accept();
    await settle();
    const sent = server.last.sent.at(-1);
    assert.equal(sent.action, "__publish__");
    answer(server.last, sent, { topic: "chat.a", duplicate: false });
    await settle();
    assert.deepEqual(publishing.outcome, ["resolved", { topic: "chat.a", duplicate: false }]);
  });

  test("a waiting publish rejects when the client is closed, or the connection does not come back in time", async () => {
    const { dz, server } = await connected({ backoff: { initial: 100, jitter: 0 }, timeout: 1000 });
    const closing = track(dz.publish("chat.a", { text: "1" }));
    server.last.drop(CloseCode.ABNORMAL);
    await settle();
    dz.close();
    await settle();
    assert.equal(closing.outcome[0], "rejected");
    assert.equal(closing.outcome[1].code, "CLOSED");

    const other = await connected({ backoff: { initial: 5000, jitter: 0 }, timeout: 1000 });
    const late = track(other.dz.publish("chat.a", { text: "2" }));
    other.server.last.drop(CloseCode.ABNORMAL);
    await settle();
    await other.time.advance(999);
    assert.equal(late.outcome, "pending");
    await other.time.advance(1);
    assert.equal(late.outcome[0], "rejected");
    assert.equal(late.outcome[1].code, "CONNECTION_LOST");
    assert.equal(isConnectionLoss(late.outcome[1]), true);
  });
});

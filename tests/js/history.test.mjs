// drizzle.js on topics with history: positions, `since` on re-subscribe, no offset twice, "recovery".
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { classifyFrame, CloseCode, Drizzle } from "../../drizzle_gateway/static/drizzle.js";
import { FakeServer, FakeTime, settle } from "./fakes.mjs";

async function connected() {
  const time = new FakeTime();
  const server = new FakeServer();
  const pending = Drizzle.connect("ws://test/ws", {
    WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false,
    backoff: { initial: 100, jitter: 0 },
  });
  server.last.accept();
  const dz = await pending;
  const recoveries = [];
  dz.on("recovery", (info) => recoveries.push(info));
  return { dz, time, server, recoveries };
}

/** Subscribe to feed.lobby (position e1/0); the handler records [offset, data]. */
async function subscribed(server, dz, seen) {
  const subscribing = dz.subscribe("feed.lobby", (data, meta) => seen.push([meta.offset, data]));
  server.last.reply({ topic: "feed.lobby", epoch: "e1", offset: 0 });
  return subscribing;
}

async function reconnect(time, server, code = CloseCode.ABNORMAL) {
  server.last.drop(code);
  await time.advance(100);
  server.last.accept();
  await settle();
  return server.last.sent.at(-1);
}

const event = (offset, text = `m${offset}`) => ({ topic: "feed.lobby", data: { text }, offset });

test("classifyFrame keeps an event's offset", () => {
  assert.deepEqual(classifyFrame('{"topic":"f","data":1,"offset":7}'), { kind: "event", topic: "f", data: 1, offset: 7 });
});

describe("history over a fake socket", () => {
  test("the subscribe reply and each event move the position; handlers see offsets", async () => {
    const { dz, server } = await connected();
    const seen = [];
    await subscribed(server, dz, seen);
    assert.deepEqual(dz.position("feed.lobby"), { epoch: "e1", offset: 0 });
    server.last.deliver(event(1));
    server.last.deliver(event(2));
    assert.deepEqual(seen, [[1, { text: "m1" }], [2, { text: "m2" }]]);
    assert.deepEqual(dz.position("feed.lobby"), { epoch: "e1", offset: 2 });
  });

  test("a reconnect re-subscribes with since; replayed events arrive once; recovered: true is emitted", async () => {
    const { dz, time, server, recoveries } = await connected();
    const seen = [];
    await subscribed(server, dz, seen);
    server.last.deliver(event(1));
    server.last.deliver(event(2));
    const resubscribe = await reconnect(time, server);
    assert.deepEqual(resubscribe.data, { topic: "feed.lobby", since: { epoch: "e1", offset: 2 } });
    server.last.deliver(event(2)); // a replay that overlaps what was delivered: dropped
    server.last.deliver(event(3));
    server.last.reply({ topic: "feed.lobby", epoch: "e1", offset: 3, recovered: true });
    await settle();
    server.last.deliver(event(3)); // a duplicate: dropped
    server.last.deliver(event(4));
    assert.deepEqual(seen.map(([offset]) => offset), [1, 2, 3, 4]);
    assert.deepEqual(recoveries, [{ topic: "feed.lobby", recovered: true, epoch: "e1", offset: 3 }]);
    assert.equal(dz.state, "open");
  });

  test("after 1012 (a drained server) it re-subscribes since its position on the next socket", async () => {
    const { dz, time, server, recoveries } = await connected();
    const seen = [];
    await subscribed(server, dz, seen);
    server.last.deliver(event(1));
    const resubscribe = await reconnect(time, server, CloseCode.SERVICE_RESTART);
    assert.deepEqual(resubscribe.data, { topic: "feed.lobby", since: { epoch: "e1", offset: 1 } });
    server.last.deliver(event(2));
    server.last.reply({ topic: "feed.lobby", epoch: "e1", offset: 2, recovered: true });
    await settle();
    assert.deepEqual(seen.map(([offset]) => offset), [1, 2]);
    assert.deepEqual(recoveries, [{ topic: "feed.lobby", recovered: true, epoch: "e1", offset: 2 }]);
  });

  test("recovered: false is emitted and the new epoch's events are delivered", async () => {
    const { dz, time, server, recoveries } = await connected();
    const seen = [];
    await subscribed(server, dz, seen);
    for (const offset of [1, 2, 3]) server.last.deliver(event(offset));
    await reconnect(time, server);
    server.last.reply({ topic: "feed.lobby", epoch: "e2", offset: 1, recovered: false });
    await settle();
    server.last.deliver(event(2, "new epoch")); // offset 2 of e2 is not the old offset 2
    assert.deepEqual(seen.at(-1), [2, { text: "new epoch" }]);
    assert.deepEqual(recoveries, [{ topic: "feed.lobby", recovered: false, epoch: "e2", offset: 1 }]);
    assert.deepEqual(dz.position("feed.lobby"), { epoch: "e2", offset: 2 });
  });

  test("an event carrying a new epoch is delivered and emits recovered: false", async () => {
    const { dz, server, recoveries } = await connected();
    const seen = [];
    await subscribed(server, dz, seen);
    for (const offset of [1, 2, 3]) server.last.deliver(event(offset));
    server.last.deliver({ ...event(1, "after the restart"), epoch: "e2" }); // the server lost the history
    server.last.deliver(event(2, "next"));
    server.last.deliver(event(2, "next")); // a duplicate in the new epoch: dropped
    assert.deepEqual(seen.slice(3), [[1, { text: "after the restart" }], [2, { text: "next" }]]);
    assert.deepEqual(recoveries, [{ topic: "feed.lobby", recovered: false, epoch: "e2", offset: 1 }]);
    assert.deepEqual(dz.position("feed.lobby"), { epoch: "e2", offset: 2 });
  });

  test("topics without history re-subscribe without since and emit no recovery", async () => {
    const { dz, time, server, recoveries } = await connected();
    const subscribing = dz.subscribe("chat.lobby", () => {});
    server.last.reply({ topic: "chat.lobby" });
    await subscribing;
    assert.equal(dz.position("chat.lobby"), undefined);
    const resubscribe = await reconnect(time, server);
    assert.deepEqual(resubscribe.data, { topic: "chat.lobby" });
    server.last.reply({ topic: "chat.lobby" });
    await settle();
    assert.deepEqual(recoveries, []);
  });

  test("unsubscribing forgets the position", async () => {
    const { dz, server } = await connected();
    const sub = await subscribed(server, dz, []);
    const leaving = sub.unsubscribe();
    server.last.reply({ topic: "feed.lobby" });
    await leaving;
    assert.equal(dz.position("feed.lobby"), undefined);
  });

  test("a gap notice emits gap in its place and delivery goes on after it", async () => {
    const { dz, server } = await connected();
    const seen = [];
    const gaps = [];
    dz.on("gap", (info) => gaps.push([seen.length, info]));
    await subscribed(server, dz, seen);
    server.last.deliver(event(1));
    server.last.deliver({ topic: "feed.lobby", epoch: "e1", gap: { from: 2, to: 4 } });
    server.last.deliver(event(5));
    assert.deepEqual(seen.map(([offset]) => offset), [1, 5]);
    assert.deepEqual(gaps, [[1, { topic: "feed.lobby", epoch: "e1", from: 2, to: 4 }]]);
    assert.deepEqual(dz.position("feed.lobby"), { epoch: "e1", offset: 5 });
  });

  test("an offset jump without a notice is filled from __history__, events after it held meanwhile", async () => {
    const { dz, server } = await connected();
    const seen = [];
    const gaps = [];
    dz.on("gap", (info) => gaps.push(info));
    await subscribed(server, dz, seen);
    server.last.deliver(event(1));
    server.last.deliver(event(4)); // 2 and 3 never came
    server.last.deliver(event(5));
    const asked = server.last.sent.at(-1);
    assert.deepEqual([asked.action, asked.data],
      ["__history__", { topic: "feed.lobby", since: { epoch: "e1", offset: 1 }, limit: 2 }]);
    assert.deepEqual(seen.map(([offset]) => offset), [1]);
    server.last.reply({ topic: "feed.lobby", epoch: "e1", offset: 5, recovered: true,
      events: [{ offset: 2, data: { text: "m2" } }, { offset: 3, data: { text: "m3" } }] });
    await settle();
    assert.deepEqual(seen, [1, 2, 3, 4, 5].map((offset) => [offset, { text: `m${offset}` }]));
    assert.deepEqual(gaps, []);
  });

  test("what __history__ no longer holds of a jump is emitted as a gap, in its place", async () => {
    const { dz, server } = await connected();
    const seen = [];
    const gaps = [];
    dz.on("gap", (info) => gaps.push([seen.length, info]));
    await subscribed(server, dz, seen);
    server.last.deliver(event(1));
    server.last.deliver(event(6));
    server.last.reply({ topic: "feed.lobby", epoch: "e1", offset: 6, recovered: false,
      events: [{ offset: 4, data: { text: "m4" } }, { offset: 5, data: { text: "m5" } }] });
    await settle();
    assert.deepEqual(seen.map(([offset]) => offset), [1, 4, 5, 6]);
    assert.deepEqual(gaps, [[1, { topic: "feed.lobby", epoch: "e1", from: 2, to: 3 }]]);
  });
});

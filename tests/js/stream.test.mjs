// drizzle.js's streaming replies: `dz.stream(...)` and its StreamReader, over a fake socket.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CloseCode, Drizzle, StreamReader } from "../../drizzle_gateway/static/drizzle.js";
import { FakeServer, FakeTime, settle } from "./fakes.mjs";

async function connected(options = {}) {
  const time = new FakeTime();
  const server = new FakeServer();
  const pending = Drizzle.connect("ws://test/ws", {
    WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false, ...options,
  });
  server.last.accept();
  return { dz: await pending, time, server };
}

describe("StreamReader", () => {
  test("hands out items in order, then done; frames that came first wait for next()", async () => {
    const reader = new StreamReader(() => assert.fail("an ended stream is not cancelled"));
    reader.push({ request_id: 1, data: { n: 0 }, more: true });
    const waiting = [reader.next(), reader.next(), reader.next()];
    reader.push({ request_id: 1, data: { n: 1 }, more: true });
    assert.equal(reader.push({ request_id: 1, more: false }), true);
    assert.deepEqual(await Promise.all(waiting), [
      { value: { n: 0 }, done: false }, { value: { n: 1 }, done: false }, { value: undefined, done: true }]);
    assert.deepEqual(await reader.next(), { value: undefined, done: true });
    await reader.return();
  });

  test("an error frame rejects after the items before it, then the reader is done", async () => {
    const reader = new StreamReader(async () => {});
    reader.push({ request_id: 1, data: 1, more: true });
    reader.push({ request_id: 1, code: "NOT_FOUND", error: "no item 2", details: { n: 2 } });
    reader.push({ request_id: 1, data: 3, more: true }); // after the end: ignored
    assert.deepEqual(await reader.next(), { value: 1, done: false });
    await assert.rejects(reader.next(), { code: "NOT_FOUND", message: "no item 2", details: { n: 2 } });
    assert.deepEqual(await reader.next(), { value: undefined, done: true });
  });

  test("return() cancels a running stream once and drops what was left", async () => {
    let cancels = 0;
    const reader = new StreamReader(async () => { cancels += 1; });
    reader.push({ request_id: 1, data: 1, more: true });
    const waiting = reader.next();
    const extra = reader.next();
    assert.deepEqual(await waiting, { value: 1, done: false });
    assert.deepEqual(await reader.return(), { value: undefined, done: true });
    assert.deepEqual(await extra, { value: undefined, done: true });
    await reader.return();
    assert.equal(cancels, 1);
  });

  test("a plain reply is the only item", async () => {
    const reader = new StreamReader(async () => {});
    reader.push({ request_id: 1, data: { id: 1 } });
    const items = [];
    for await (const item of reader) items.push(item);
    assert.deepEqual(items, [{ id: 1 }]);
  });
});

describe("Drizzle.stream over a fake socket", () => {
  test("sends one request with fields and yields each item until the end frame", async () => {
    const { dz, server } = await connected();
    const stream = dz.stream("todos", "search", { q: "mi" }, { fields: ["id"] });
    const request = server.last.sent.at(-1);
    assert.deepEqual(request, {
      request_id: request.request_id, resource: "todos", action: "search", data: { q: "mi" }, fields: ["id"] });
    const id = request.request_id;
    for (const n of [1, 2]) server.last.deliver({ request_id: id, data: { id: n }, more: true });
    server.last.deliver({ request_id: id, more: false });
    const items = [];
    for await (const item of stream) items.push(item);
    assert.deepEqual(items, [{ id: 1 }, { id: 2 }]);
    assert.equal(dz.streams.size, 0);
  });

  test("breaking out of for-await sends __cancel__ for the stream", async () => {
    const { dz, server } = await connected();
    const stream = dz.stream("todos", "search", {});
    const id = server.last.sent.at(-1).request_id;
    server.last.deliver({ request_id: id, data: { id: 1 }, more: true });
    server.last.deliver({ request_id: id, data: { id: 2 }, more: true });
    const leaving = (async () => {
      for await (const item of stream) {
        if (item.id === 1) break;
      }
    })();
    await settle();
    const cancel = server.last.sent.at(-1);
    assert.deepEqual(cancel, { request_id: cancel.request_id, action: "__cancel__", data: { request_id: id } });
    server.last.deliver({ request_id: id, more: false }); // the server's end frame, then its reply
    server.last.reply({ request_id: id, cancelled: true });
    await leaving;
    assert.equal(dz.streams.size, 0);
    assert.equal(server.last.sent.length, 2);
  });

  test("a dropped connection rejects the stream with CONNECTION_LOST; a closed client refuses new ones", async () => {
    const { dz, server } = await connected({ reconnect: false });
    const stream = dz.stream("todos", "search", {});
    server.last.drop(CloseCode.GOING_AWAY, "server shutting down");
    await assert.rejects(stream.next(), { code: "CONNECTION_LOST" });
    dz.close();
    await assert.rejects(dz.stream("todos", "search", {}).next(), { code: "CLOSED" });
  });

  test("replies of other requests are still matched while a stream runs", async () => {
    const { dz, server } = await connected();
    const stream = dz.stream("todos", "search", {});
    const streamId = server.last.sent.at(-1).request_id;
    const call = dz.call("todos", "list");
    const callId = server.last.sent.at(-1).request_id;
    assert.notEqual(streamId, callId);
    server.last.deliver({ request_id: streamId, data: { id: 1 }, more: true });
    server.last.deliver({ request_id: callId, data: [] });
    server.last.deliver({ request_id: streamId, more: false });
    assert.deepEqual(await call, []);
    assert.deepEqual(await stream.next(), { value: { id: 1 }, done: false });
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });
});

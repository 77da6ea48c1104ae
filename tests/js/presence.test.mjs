// drizzle.js and presence: the subscribe frame asks for what the options say, joins and
// leaves reach the callbacks of their topic, and a reconnect asks for them again.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Drizzle, CloseCode, classifyFrame } from "../../drizzle_gateway/static/drizzle.js";
import { FakeServer, FakeTime } from "./fakes.mjs";

async function connected() {
  const time = new FakeTime();
  const server = new FakeServer();
  const pending = Drizzle.connect("ws://test/ws", {
    WebSocket: server.WebSocket, timers: time, now: time.now, heartbeatInterval: false, backoff: { initial: 10, jitter: 0 },
  });
  server.last.accept();
  return { dz: await pending, time, server };
}

test("classifyFrame tells a presence frame from an event", () => {
  assert.deepEqual(classifyFrame('{"topic": "chat.a", "presence": "join", "key": "ada", "member": {"name": "Ada"}}'),
    { kind: "presence", topic: "chat.a", presence: "join", key: "ada", member: { name: "Ada" } });
  assert.equal(classifyFrame('{"topic": "chat.a", "presence": "stale"}').kind, "presence");
  assert.equal(classifyFrame('{"topic": "chat.a", "data": {}}').kind, "event");
});

test("joins, leaves and stale notices reach the callbacks; a reconnect asks for them again", async () => {
  const { dz, time, server } = await connected();
  const heard = [];
  const subscribing = dz.subscribe("chat.a", () => heard.push("event"), {
    presence: { name: "Ada" }, memberFields: ["name"],
    onJoin: (member, meta) => heard.push(["join", member, meta]),
    onLeave: (member, meta) => heard.push(["leave", member, meta]),
    onStale: (meta) => heard.push(["stale", meta]),
  });
  const asked = { topic: "chat.a", presence: { name: "Ada" }, join_leave: true, member_fields: ["name"] };
  assert.deepEqual(server.last.sent.at(-1).data, asked);
  server.last.reply({ topic: "chat.a" });
  await subscribing;
  server.last.deliver({ topic: "chat.a", presence: "join", key: "ada", member: { name: "Ada" } });
  server.last.deliver({ topic: "chat.b", presence: "join", key: "bob", member: { name: "Bob" } });
  server.last.deliver({ topic: "chat.a", presence: "leave", key: "ada", member: { name: "Ada" } });
  server.last.deliver({ topic: "chat.a", presence: "stale" });
  assert.deepEqual(heard, [
    ["join", { name: "Ada" }, { topic: "chat.a", key: "ada" }],
    ["leave", { name: "Ada" }, { topic: "chat.a", key: "ada" }],
    ["stale", { topic: "chat.a" }],
  ]);

  const listing = dz.presence("chat.a", { fields: ["name"] });
  assert.deepEqual(server.last.sent.at(-1).data, { topic: "chat.a", fields: ["name"] });
  assert.equal(server.last.sent.at(-1).action, "__presence__");
  server.last.reply({ topic: "chat.a", members: [{ key: "ada", connections: 2, member: { name: "Ada" } }] });
  assert.deepEqual(await listing, [{ key: "ada", connections: 2, member: { name: "Ada" } }]);

  server.last.drop(CloseCode.GOING_AWAY, "bye");
  await time.advance(20);
  server.last.accept();
  await time.advance(1);
  assert.deepEqual(server.last.sent.at(-1).data, asked);
  dz.close();
});

test("a subscription without presence options asks for none", async () => {
  const { dz, server } = await connected();
  const subscribing = dz.subscribe("chat.a", () => {});
  assert.deepEqual(server.last.sent.at(-1).data, { topic: "chat.a" });
  server.last.reply({ topic: "chat.a" });
  await subscribing;
  dz.close();
});

// Unit tests of the explorer's schema helpers (the page itself is tested in Chromium).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  channelParams, defaultChannel, expandRefs, fieldPaths, matchingString, nullable, offered, prefill, resolve, skeleton,
  strftime,
} from "../../drizzle_gateway/static/explorer-schema.js";
import { docSegments } from "../../drizzle_gateway/static/explorer-view.js";
import { websocketUrl } from "../../drizzle_gateway/static/explorer.js";

const components = {
  schemas: {
    Owner: { type: "object", properties: { name: { type: "string" }, email: { type: "string", format: "email" } } },
    Todo: {
      type: "object",
      properties: {
        id: { type: "integer" },
        title: { type: "string", maxLength: 200 },
        done: { type: "boolean" },
        tags: { type: "array", items: { type: "string" } },
        owner: { $ref: "#/components/schemas/Owner" },
        kind: { type: "string", enum: ["a", "b"] },
        note: { type: ["string", "null"] },
        level: { type: "number", default: 3 },
      },
    },
  },
};

test("resolve follows $ref and passes plain schemas through", () => {
  assert.equal(resolve({ $ref: "#/components/schemas/Owner" }, components), components.schemas.Owner);
  assert.deepEqual(resolve({ type: "string" }, components), { type: "string" });
  assert.equal(resolve(null, components), null);
  assert.equal(resolve({ $ref: "#/components/schemas/Missing" }, components), null);
});

test("skeleton fills every property with a value its schema accepts", () => {
  assert.deepEqual(skeleton({ $ref: "#/components/schemas/Todo" }, components), {
    id: 0, title: "example", done: false, tags: [], owner: { name: "example", email: "ada@example.com" }, kind: "a",
    note: null, level: 3,
  });
  assert.equal(skeleton(null, components), null);
});

test("skeleton prefers default, examples, example, then enum", () => {
  const schema = (extra) => skeleton({ type: "string", enum: ["e"], ...extra }, components);
  assert.equal(schema({ default: "d", examples: ["x"], example: "y" }), "d");
  assert.equal(schema({ examples: ["x"], example: "y" }), "x");
  assert.equal(schema({ example: "y" }), "y");
  assert.equal(schema({}), "e");
  assert.equal(skeleton({ type: ["array", "null"], default: null }, components), null);
});

test("skeleton honours formats, patterns, lengths and bounds", () => {
  const now = new Date("2026-11-24T08:30:00.000Z");
  const message = {
    type: "object",
    properties: {
      room: { type: "string", pattern: "^[A-Za-z0-9_-]{1,40}$" },
      code: { type: "string", pattern: "^[A-Z]{3}-\\d{2}$" },
      author: { type: "string", minLength: 1, maxLength: 40 },
      pin: { type: "string", minLength: 8 },
      tiny: { type: "string", maxLength: 2 },
      sent_at: { type: "string", format: "date-time" },
      day: { type: "string", format: "date" },
      count: { type: "integer", minimum: 5, maximum: 9 },
      ratio: { type: "number", exclusiveMinimum: 0, maximum: 1 },
      stock: { type: "integer", maximum: -3 },
      pair: { type: "array", minItems: 2, items: { type: "integer", minimum: 1 } },
      id: { type: "integer", readOnly: true },
    },
  };
  assert.deepEqual(skeleton(message, components, { now }), {
    room: "example", code: "AAA-00", author: "example", pin: "examplex", tiny: "ex",
    sent_at: "2026-11-24T08:30:00.000Z", day: "2026-11-24", count: 6, ratio: 0.5, stock: -4, pair: [2, 2],
  });
});

test("numbers stay inside their bounds, off a bound that may be exclusive", () => {
  const number = (schema) => skeleton({ type: "number", ...schema }, components);
  const integer = (schema) => skeleton({ type: "integer", ...schema }, components);
  assert.equal(number({ minimum: 0, maximum: 1 }), 0.5);
  assert.equal(number({ minimum: 0, maximum: 0.2 }), 0.1);
  assert.equal(integer({ minimum: 1, maximum: 1 }), 1);
  assert.equal(integer({ minimum: -5 }), 0);
  assert.equal(integer({ maximum: 10 }), 0);
  assert.equal(integer({ exclusiveMinimum: 3 }), 4);
  assert.equal(integer({ minimum: 3, multipleOf: 5 }), 5);
});

test("matchingString finds a value for a pattern, preferring the hints", () => {
  for (const [pattern, hints, expected] of [
    ["^[A-Za-z0-9_-]{1,40}$", ["example"], "example"],
    ["^[a-z]+$", ["Room"], "example"],
    ["^\\d{4}-\\d{2}$", [], "0000-00"],
    ["^(?:red|green)$", ["blue"], "red"],
    ["^[^a-z]{2}$", [], "AA"],
    ["^v\\d+(\\.\\d+)*$", [], "v0"],
  ]) {
    const found = matchingString(pattern, hints);
    assert.equal(found, expected, pattern);
    assert.match(found, new RegExp(pattern), pattern);
  }
  assert.equal(matchingString("(?P<bad", ["hint"]), "hint", "a pattern JS cannot compile falls back to the hint");
});

test("prefill gives the channel built-ins a channel of a topic that allows them", () => {
  const contract = {
    components,
    topics: [
      { name: "todos", client_subscribe: true, client_publish: false, payload: null, history: null },
      { name: "chat.{room}", client_subscribe: true, client_publish: true, payload: { $ref: "#/components/schemas/Owner" },
        history: null },
      { name: "log.{day}", client_subscribe: true, client_publish: false, payload: null, history: { size: 10 } },
    ],
  };
  const publishInput = { type: "object", properties: { topic: { type: "string" }, payload: {} } };
  const subscribeInput = { type: "object", properties: { topic: { type: "string" }, fields: { type: ["array", "null"], default: null } } };
  assert.deepEqual(prefill({ name: "__publish__", input: publishInput }, contract),
    { topic: "chat.example", payload: { name: "example", email: "ada@example.com" } });
  assert.deepEqual(prefill({ name: "__subscribe__", input: subscribeInput }, contract), { topic: "todos", fields: null });
  const historyInput = { type: "object", required: ["topic"],
    properties: { topic: { type: "string" }, limit: { type: ["integer", "null"], minimum: 1 } } };
  assert.deepEqual(prefill({ name: "__history__", input: historyInput }, contract), { topic: "log.example", limit: null },
    "only a topic that keeps history");
  assert.equal(prefill({ name: "__ping__", input: null }, contract), undefined);
});

test("offered leaves out the channel built-ins no topic allows", () => {
  const quiet = { topics: [{ name: "todos", client_subscribe: true, client_publish: false, history: null }] };
  assert.deepEqual(["__history__", "__publish__", "__subscribe__", "__ping__"].map((name) => offered(name, quiet)),
    [false, false, true, true]);
  const none = { topics: [] };
  assert.equal(offered("__subscribe__", none), false);
  assert.equal(offered("__schema__", none), true);
});

test("nullable sees null in a type list, a union or behind a $ref, unless there is a default", () => {
  assert.equal(nullable({ type: ["integer", "null"] }, components), true);
  assert.equal(nullable({ anyOf: [{ $ref: "#/components/schemas/Owner" }, { type: "null" }] }, components), true);
  assert.equal(nullable({ type: ["integer", "null"], default: 3 }, components), false);
  assert.equal(nullable({ type: "string" }, components), false);
});

test("channelParams reads a concrete channel's params, as the gateway matches them", () => {
  assert.deepEqual(channelParams("chat.{room}", "chat.lobby"), { room: "lobby" });
  assert.deepEqual(channelParams("todos", "todos"), {});
  assert.equal(channelParams("chat.{room}", "chat.a.b"), null, "a param holds no dot");
  assert.equal(channelParams("chat.{room}", "chatXlobby"), null, "the dot is literal");
});

test("prefill fills a publish payload from the load side of its topic, where __schema__ gives one", () => {
  const contract = {
    components,
    topics: [{ name: "notes", client_subscribe: true, client_publish: true,
      payload: { $ref: "#/components/schemas/Todo" }, publish: { $ref: "#/components/schemas/Owner" } }],
  };
  const publishInput = { type: "object", properties: { topic: { type: "string" }, payload: {} } };
  assert.deepEqual(prefill({ name: "__publish__", input: publishInput }, contract),
    { topic: "notes", payload: { name: "example", email: "ada@example.com" } });
});

test("docSegments turns reST literals, interpreted text and roles into code", () => {
  assert.deepEqual(docSegments("published to ``chat.{room}``."), [
    { text: "published to ", code: false }, { text: "chat.{room}", code: true }, { text: ".", code: false },
  ]);
  assert.deepEqual(docSegments("see `Topic` and :class:`Gateway`"), [
    { text: "see ", code: false }, { text: "Topic", code: true }, { text: " and ", code: false },
    { text: "Gateway", code: true },
  ]);
  assert.deepEqual(docSegments("no markup"), [{ text: "no markup", code: false }]);
});

test("websocketUrl keeps the prefix the explorer is served under", () => {
  assert.equal(websocketUrl("http://h:8888/_explorer/explorer.js", "/ws"), "ws://h:8888/ws");
  assert.equal(websocketUrl("https://h/app/_explorer/explorer.js", "/socket"), "wss://h/app/socket");
});

test("fieldPaths lists selectable fields two levels deep, through arrays", () => {
  const paths = ["id", "title", "done", "tags", "owner", "owner.name", "owner.email", "kind", "note", "level"];
  assert.deepEqual(fieldPaths({ $ref: "#/components/schemas/Todo" }, components), paths);
  assert.deepEqual(fieldPaths({ type: "array", items: { $ref: "#/components/schemas/Todo" } }, components), paths);
  assert.deepEqual(fieldPaths(null, components), []);
});

test("expandRefs inlines references for reading", () => {
  const expanded = expandRefs({ $ref: "#/components/schemas/Todo" }, components);
  assert.deepEqual(expanded.properties.owner, components.schemas.Owner);
});

test("defaultChannel fills a pattern's params with an example value", () => {
  assert.equal(defaultChannel("chat.{room}"), "chat.example");
  assert.equal(defaultChannel("todos"), "todos");
});

test("strftime writes the time as a custom marshmallow format reads it", () => {
  const now = new Date(Date.UTC(2026, 10, 4, 7, 5, 9, 42));
  assert.equal(strftime("%Y-%m-%d %H:%M:%S.%f", now), "2026-11-04 07:05:09.042000");
  assert.equal(strftime("%d/%m/%y %% %a", now), "04/11/26 % %a");
});

test("skeleton fills a custom-format date and a naive ISO pattern with the current time, and leaves an optional nullable list null", () => {
  const now = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const schema = {
    type: "object",
    required: ["at"],
    properties: {
      at: { type: "string", pattern: "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d)?$" },
      day: { type: "string", "x-strftime": "%d.%m.%Y" },
      fields: { type: ["array", "null"], items: { type: "string" } },
    },
  };
  assert.deepStrictEqual(skeleton(schema, {}, { now }),
    { at: "2026-01-02T03:04:05.000Z", day: "02.01.2026", fields: null });
});

// Unit tests of the explorer's schema helpers (the page itself is tested in Chromium).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  defaultChannel, docSegments, expandRefs, fieldPaths, matchingString, prefill, resolve, skeleton, strftime,
  websocketUrl,
} from "../../drizzle_gateway/static/explorer.js";

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
    id: 0, title: "title", done: false, tags: [], owner: { name: "name", email: "ada@example.com" }, kind: "a",
    note: "note", level: 3,
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
    room: "room", code: "AAA-00", author: "author", pin: "pinxxxxx", tiny: "ti",
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
    ["^[A-Za-z0-9_-]{1,40}$", ["room"], "room"],
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

test("prefill gives the channel built-ins a real channel and a payload of its topic", () => {
  const contract = {
    components,
    topics: [
      { name: "todos", client_subscribe: true, client_publish: false, payload: null },
      { name: "chat.{room}", client_subscribe: true, client_publish: true, payload: { $ref: "#/components/schemas/Owner" } },
    ],
  };
  const publishInput = { type: "object", properties: { topic: { type: "string" }, payload: {} } };
  const subscribeInput = { type: "object", properties: { topic: { type: "string" }, fields: { type: ["array", "null"], default: null } } };
  assert.deepEqual(prefill({ name: "__publish__", input: publishInput }, contract),
    { topic: "chat.room", payload: { name: "name", email: "ada@example.com" } });
  assert.deepEqual(prefill({ name: "__subscribe__", input: subscribeInput }, contract), { topic: "todos", fields: null });
  const historyInput = { type: "object", properties: { topic: { type: "string" }, limit: { type: ["integer", "null"], default: null } } };
  assert.deepEqual(prefill({ name: "__history__", input: historyInput }, contract), { topic: "todos", limit: null });
  assert.equal(prefill({ name: "__ping__", input: null }, contract), undefined);
});

test("prefill fills a publish payload from the load side of its topic, where __schema__ gives one", () => {
  const contract = {
    components,
    topics: [{ name: "notes", client_subscribe: true, client_publish: true,
      payload: { $ref: "#/components/schemas/Todo" }, publish: { $ref: "#/components/schemas/Owner" } }],
  };
  const publishInput = { type: "object", properties: { topic: { type: "string" }, payload: {} } };
  assert.deepEqual(prefill({ name: "__publish__", input: publishInput }, contract),
    { topic: "notes", payload: { name: "name", email: "ada@example.com" } });
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

test("defaultChannel names a concrete channel after the pattern's params", () => {
  assert.equal(defaultChannel("chat.{room}"), "chat.room");
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

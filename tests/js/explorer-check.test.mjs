// The explorer's check of an input against its JSON Schema, before it is sent.
import assert from "node:assert/strict";
import { test } from "node:test";

import { check, say } from "../../drizzle_gateway/static/explorer-check.js";

const components = {
  schemas: {
    Position: {
      type: "object", required: ["epoch", "offset"], additionalProperties: false,
      properties: { epoch: { type: "string" }, offset: { type: "integer", minimum: 0 } },
    },
    NewMessage: {
      type: "object", required: ["room", "text"], additionalProperties: false,
      properties: {
        room: { type: "string", pattern: "^[A-Za-z0-9_-]{1,40}$" },
        text: { type: "string", minLength: 1, maxLength: 5 },
        kind: { type: "string", enum: ["note", "alert"] },
        tags: { type: "array", items: { type: "string" }, maxItems: 2 },
        since: { anyOf: [{ $ref: "#/components/schemas/Position" }, { type: "null" }] },
        ratio: { type: "number", exclusiveMinimum: 0, maximum: 1 },
      },
    },
  },
};
const message = { $ref: "#/components/schemas/NewMessage" };
const problems = (value, schema = message) => check(value, schema, components).map(say);

test("a value that fits has no problems", () => {
  assert.deepEqual(problems({ room: "lobby", text: "hi", kind: "note", tags: ["a"], since: null, ratio: 1 }), []);
  assert.deepEqual(problems({ room: "lobby", text: "hi", since: { epoch: "e", offset: 0 } }), []);
});

test("each keyword of the subset is checked, with the path of the value", () => {
  assert.deepEqual(problems({ text: "" }), ["room: required", "text: at least 1 character"]);
  assert.deepEqual(problems({ room: "has space", text: "toolong", extra: 1 }),
    ["room: must match ^[A-Za-z0-9_-]{1,40}$", "text: at most 5 characters", "extra: unknown field"]);
  assert.deepEqual(problems({ room: "r", text: "t", kind: "other", tags: ["a", 2, "c"], ratio: 0 }), [
    'kind: must be one of "note", "alert"', "tags: at most 2 item(s)", "tags[1]: expected string, got integer",
    "ratio: must be > 0",
  ]);
  assert.deepEqual(problems("text"), ["expected object, got string"]);
});

test("a union reports its closest variant; a lone variant its own problems", () => {
  const [found] = problems({ room: "r", text: "t", since: { epoch: "e", offset: -1 } });
  assert.match(found, /^since: matches none of its 2 variants \(closest: since\.offset: must be ≥ 0\)$/);
  assert.deepEqual(problems(5, { anyOf: [{ type: "string" }] }), ["expected string, got integer"]);
});

test("integers are numbers, characters are code points, and a pattern JavaScript cannot read is left to the server", () => {
  assert.deepEqual(problems(3, { type: "number" }), []);
  assert.deepEqual(problems(3.5, { type: "integer" }), ["expected integer, got number"]);
  assert.deepEqual(problems("😀😀", { type: "string", maxLength: 2 }), []);
  assert.deepEqual(problems("x", { type: "string", pattern: "(?P<name>y)" }), []);
  assert.deepEqual(problems(7, { type: "integer", multipleOf: 5 }), ["must be a multiple of 5"]);
  assert.deepEqual(problems(null, { type: ["string", "null"] }), []);
});

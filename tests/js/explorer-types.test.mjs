// The explorer's schema view: types named as the TypeScript codegen names them.
import assert from "node:assert/strict";
import { test } from "node:test";

import { fieldsOf, notes, shape, typeName, typeText } from "../../drizzle_gateway/static/explorer-types.js";

const ISO = "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?)?$";
const components = {
  schemas: {
    ChatMessage: {
      type: "object", required: ["author"],
      properties: {
        id: { type: "integer", readOnly: true },
        author: { type: "string", minLength: 1, maxLength: 40 },
        sent_at: { type: "string", pattern: ISO },
        secret: { type: "string", writeOnly: true },
        replies: { type: "array", items: { $ref: "#/components/schemas/ChatMessage" } },
      },
    },
    "Todo-Input": { type: "object", properties: { title: { type: "string" } } },
    Api: { type: "object", properties: { x: { type: "integer" } } },
  },
};

test("components are named as in the generated module, on each side", () => {
  assert.equal(typeName("ChatMessage", "out"), "ChatMessage");
  assert.equal(typeName("ChatMessage", "in"), "ChatMessageInput");
  assert.equal(typeName("Todo-Input", "in"), "TodoInput", "a load side of its own is its schema's");
  assert.equal(typeName("Api", "out"), "Api_", "a helper's name is taken");
  assert.equal(typeName("my.schema", "out"), "my_schema");
});

test("types read as TypeScript", () => {
  assert.equal(typeText({ type: "integer" }, "out"), "number");
  assert.equal(typeText({ type: ["string", "null"] }, "out"), "string | null");
  assert.equal(typeText({ type: "array", items: { $ref: "#/components/schemas/ChatMessage" } }, "out"), "Array<ChatMessage>");
  assert.equal(typeText({ enum: ["a", "b"] }, "in"), '"a" | "b"');
  assert.equal(typeText({ anyOf: [{ $ref: "#/components/schemas/ChatMessage" }, { type: "null" }] }, "in"),
    "ChatMessageInput | null");
  assert.equal(typeText({ type: "object", additionalProperties: { type: "number" } }, "out"), "{ [key: string]: number }");
  assert.equal(typeText({ description: "anything" }, "out"), "unknown");
});

test("a date-time pattern is named, not shown as a regular expression; other constraints in a few words", () => {
  assert.deepEqual(notes({ type: "string", pattern: ISO }), ["ISO 8601 date-time (offset optional)"]);
  assert.deepEqual(notes({ type: "string", minLength: 1, maxLength: 40 }), ["1–40 chars"]);
  assert.deepEqual(notes({ type: "integer", minimum: 1, default: 7 }), ["≥ 1", "default 7"]);
  assert.deepEqual(notes({ type: "string", pattern: "^a+$" }), ["matches ^a+$"]);
});

test("fields leave out what the side does not carry; only the load side has optional fields", () => {
  const node = components.schemas.ChatMessage;
  const out = fieldsOf(node, "out", components);
  assert.deepEqual(out.map((f) => `${f.name}${f.optional ? "?" : ""}: ${f.type}`),
    ["id: number", "author: string", "sent_at: string", "replies: Array<ChatMessage>"]);
  const input = fieldsOf(node, "in", components);
  assert.deepEqual(input.map((f) => `${f.name}${f.optional ? "?" : ""}: ${f.type}`),
    ["author: string", "sent_at?: string", "secret?: string", "replies?: Array<ChatMessageInput>"]);
  assert.equal(out.at(-1).shape.component, "ChatMessage", "a nesting field unfolds into its component");
});

test("shape follows a $ref, array items or a nullable union to the object it shows", () => {
  const many = shape({ type: "array", items: { $ref: "#/components/schemas/ChatMessage" } }, "out", components);
  assert.equal(many.type, "Array<ChatMessage>");
  assert.equal(many.component, "ChatMessage");
  assert.equal(many.fields.length, 4);
  assert.deepEqual(shape({ type: "string" }, "in", components), { type: "string", component: null, fields: [] });
});

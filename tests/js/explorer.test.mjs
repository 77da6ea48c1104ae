// Unit tests of the explorer's schema helpers (the page itself is tested in Chromium).
import assert from "node:assert/strict";
import { test } from "node:test";

import { defaultChannel, expandRefs, fieldPaths, resolve, skeleton } from "../../drizzle_gateway/static/explorer.js";

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

test("skeleton fills every property with a value of its type", () => {
  assert.deepEqual(skeleton({ $ref: "#/components/schemas/Todo" }, components), {
    id: 0, title: "", done: false, tags: [], owner: { name: "", email: "" }, kind: "a", note: "", level: 3,
  });
  assert.equal(skeleton(null, components), null);
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

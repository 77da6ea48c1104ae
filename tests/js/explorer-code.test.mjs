// "Copy as code": the snippets for drizzle.js, the Python client and the generated TypeScript.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  drizzleCode, jsLiteral, operationOf, pyLiteral, pythonCode, topicMembers, typescriptCode,
} from "../../drizzle_gateway/static/explorer-code.js";

const target = {
  url: "ws://h:8888/ws", clientUrl: "http://h:8888/drizzle.js",
  topics: [{ name: "chat.{room}", params: ["room"] }, { name: "todos", params: [] }, { name: "chat", params: [] }],
};
const say = operationOf({ resource: "rooms", action: "say", data: { room: "lobby", text: "hi" }, fields: ["text"] });

test("a request frame becomes the operation a client method does", () => {
  assert.deepEqual(operationOf({ action: "__subscribe__", data: { topic: "todos", fields: null } }),
    { kind: "subscribe", channel: "todos", fields: undefined });
  assert.deepEqual(operationOf({ action: "__publish__", data: { topic: "chat.x", payload: 1 } }),
    { kind: "publish", channel: "chat.x", payload: 1 });
  assert.equal(operationOf({ action: "__subscribe__", data: { topic: "t", since: { epoch: "e", offset: 1 } } }).kind,
    "request", "a replay from a position is sent as it is");
  assert.equal(say.kind, "call");
});

test("values are written in each language's syntax", () => {
  assert.equal(pyLiteral({ a: true, b: null, c: [false, 1.5, "x\"y"] }), '{"a": True, "b": None, "c": [False, 1.5, "x\\"y"]}');
  assert.equal(jsLiteral({ room: "lobby", "not-ident": 1 }), '{ room: "lobby", "not-ident": 1 }');
  assert.match(pyLiteral({ text: "x".repeat(80) }), /^\{\n {4}"text": "x+",\n\}$/, "long values go one per line");
});

test("a JSON value written as JavaScript evaluates to the same value, whatever its keys", () => {
  const values = [
    JSON.parse('{"__proto__": {"admin": true}, "name": "ann"}'),  // JSON.parse makes __proto__ an own field
    JSON.parse('{"nested": [{"__proto__": 1}], "constructor": "x", "": 0, "a b": null, "1": "one"}'),
    { text: "quote \" and \u2028", list: [1.5, -0, "x".repeat(70)], deep: { deeper: { deepest: [] } } },
  ];
  for (const value of values) {
    const evaluated = new Function(`return ${jsLiteral(value)};`)();
    assert.equal(JSON.stringify(evaluated), JSON.stringify(value), jsLiteral(value));
    assert.equal(Object.getPrototypeOf(evaluated), Object.prototype);
  }
});

test("drizzle.js: import, connect with the token, call with the fields", () => {
  assert.equal(drizzleCode(say, { ...target, token: "s3cret" }), [
    'import { Drizzle } from "http://h:8888/drizzle.js";',
    "",
    'const dz = await Drizzle.connect("ws://h:8888/ws", { token: "s3cret" });',
    'const reply = await dz.call("rooms", "say", { room: "lobby", text: "hi" }, { fields: ["text"] });',
    "console.log(reply);",
    "",
  ].join("\n"));
  assert.match(drizzleCode(operationOf({ action: "__ping__" }), target), /await dz\.ping\(\);/);
});

test("Python: the client, __auth__ first when there is a token, events printed as they come", () => {
  const code = pythonCode(say, { ...target, token: "s3cret" });
  assert.match(code, /^import asyncio\n\nfrom drizzle_gateway\.client import Client\n/);
  assert.match(code, /async with Client\("ws:\/\/h:8888\/ws"\) as client:\n {8}await client\.request\(\{"action": "__auth__", "data": \{"token": "s3cret"\}\}\)\n {8}reply = await client\.call\("rooms", "say", \{"room": "lobby", "text": "hi"\}, fields=\["text"\]\)\n {8}print\(reply\)\n/);
  assert.match(code, /\nasyncio\.run\(main\(\)\)\n$/);
  const watch = pythonCode({ kind: "subscribe", channel: "todos" }, target);
  assert.match(watch, /await client\.subscribe\("todos"\)\n {8}async for event in client\.events\(\):\n {12}print\(event\.topic, event\.data\)/);
  assert.doesNotMatch(watch, /__auth__/);
});

test("TypeScript: typed(dz), members named as the codegen names them", () => {
  assert.deepEqual([...topicMembers(target.topics).values()], ["chat", "todos", "chat_"]);
  assert.match(typescriptCode(say, target),
    /const api = typed\(dz\);\nconst reply = await api\.rooms\.say\(\{ room: "lobby", text: "hi" \}, \{ fields: \["text"\] as const \}\);/);
  assert.match(typescriptCode({ kind: "publish", channel: "chat.lobby", payload: { text: "hi" } }, target),
    /await api\.topics\.chat\(\{ room: "lobby" \}\)\.publish\(\{ text: "hi" \}\);/);
  assert.match(typescriptCode({ kind: "subscribe", channel: "todos" }, target),
    /await api\.topics\.todos\(\)\.subscribe\(\(data, meta\) => console\.log\(meta\.topic, data\)\);/);
});

test("names and values with quotes, backslashes, newlines and ${} stay strings in every snippet", async () => {
  const { spawnSync } = await import("node:child_process");
  const hostile = 'a"b\'c\\d\ne${f}`g\u2028h</script>';
  const op = { kind: "publish", channel: hostile, payload: { [hostile]: hostile } };
  const seen = [];
  const Drizzle = { connect: async (url, options) => ({ publish: async (...args) => seen.push(url, options, ...args) }) };
  const console = { log() {} };
  const body = drizzleCode(op, { ...target, url: hostile, token: hostile }).replace(/^import .*\n/, "");
  await new Function("Drizzle", "console", `return (async () => {\n${body}\n})();`)(Drizzle, console);
  assert.deepEqual(seen, [hostile, { token: hostile }, hostile, { [hostile]: hostile }]);

  const python = pythonCode(op, { ...target, url: hostile, token: hostile });
  const read = spawnSync(process.env.PYTHON ?? "python3", ["-c", `
import ast, json, sys
def literal(node):
    try:
        return [ast.literal_eval(node)]
    except ValueError:
        return []
calls = [node for node in ast.walk(ast.parse(sys.stdin.read())) if isinstance(node, ast.Call) and node.args]
print(json.dumps([[value for arg in call.args for value in literal(arg)] for call in calls]))
`], { input: python, encoding: "utf8" });
  assert.equal(read.status, 0, read.stderr);
  assert.deepEqual(JSON.parse(read.stdout).filter((args) => args.length), [
    [hostile], // Client(url)
    [{ action: "__auth__", data: { token: hostile } }],
    [hostile, { [hostile]: hostile }], // client.publish(channel, payload)
  ]);
});

test("a streaming action is copied as a loop over its items in each language", () => {
  const search = operationOf({ resource: "todos", action: "search", data: { q: "milk" }, fields: ["id"] }, true);
  assert.equal(search.kind, "stream");
  assert.match(drizzleCode(search, target),
    /for await \(const item of dz\.stream\("todos", "search", \{ q: "milk" \}, \{ fields: \["id"\] \}\)\) console\.log\(item\);/);
  assert.match(pythonCode(search, target),
    /async for item in client\.stream\("todos", "search", \{"q": "milk"\}, fields=\["id"\]\):\n {12}print\(item\)/);
  assert.match(typescriptCode(search, target),
    /for await \(const item of api\.todos\.search\(\{ q: "milk" \}, \{ fields: \["id"\] as const \}\)\) \{\n {2}console\.log\(item\);\n\}/);
});

/**
 * "Copy as code": what the explorer is about to send, written for drizzle.js, the Python
 * client (`drizzle_gateway.client.Client`) and the TypeScript module the codegen writes
 * (`typed(dz)` over drizzle.js). Each snippet is a whole program: it connects (sending
 * the token with `__auth__` when one was entered), does the one thing, prints the reply
 * or the events.
 *
 * Pure, unit-tested under node (tests/js/explorer-code.test.mjs).
 * @module explorer-code
 */

import { channelParams } from "./explorer-schema.js";

/**
 * @typedef {Object} Operation what to do, one of:
 *   {kind: "call", resource, action, data?, fields?}: an application action;
 *   {kind: "request", action, data?}: a built-in action sent as it is;
 *   {kind: "subscribe", channel, fields?}: watch a channel and print its events;
 *   {kind: "publish", channel, payload}.
 */

/**
 * @typedef {Object} Target where the snippet connects
 * @property {string} url the websocket, "ws://host/ws"
 * @property {string} clientUrl drizzle.js, "http://host/drizzle.js"
 * @property {string} [token] sent with `__auth__` first
 * @property {Array} [topics] the contract's topics, to name a channel's topic in TypeScript
 */

/**
 * The operation a request frame of the explorer stands for.
 * @param {{resource?: string, action: string, data?: *, fields?: string[]}} frame
 * @returns {Operation}
 */
export function operationOf(frame, stream = false) {
  const { resource, action, data, fields } = frame;
  if (resource !== undefined) return { kind: stream ? "stream" : "call", resource, action, data, fields };
  const channel = data?.topic;
  if (action === "__subscribe__" && typeof channel === "string" && data.since == null) {
    return { kind: "subscribe", channel, fields: data.fields ?? undefined };
  }
  if (action === "__publish__" && typeof channel === "string") return { kind: "publish", channel, payload: data.payload };
  return { kind: "request", action, data };
}

// -- values as each language writes them -------------------------------------------

const json = (value) => JSON.stringify(value);

/**
 * An object literal's key: bare where it may be, quoted where it must be, and `__proto__` computed
 * (`["__proto__"]`): written bare or quoted it would set the object's prototype, not a field.
 */
function jsKey(key) {
  if (key === "__proto__") return `[${json(key)}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : json(key);
}

/** A JSON value as JavaScript, keys quoted only where they must be. */
export function jsLiteral(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    const inner = indent + "  ";
    const items = value.map((item) => jsLiteral(item, inner));
    const flat = `[${items.join(", ")}]`;
    return flat.length <= 60 && !flat.includes("\n") ? flat : `[\n${items.map((i) => inner + i).join(",\n")},\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    const inner = indent + "  ";
    const items = entries.map(([key, item]) => `${jsKey(key)}: ${jsLiteral(item, inner)}`);
    const flat = `{ ${items.join(", ")} }`;
    return flat.length <= 60 && !flat.includes("\n") ? flat : `{\n${items.map((i) => inner + i).join(",\n")},\n${indent}}`;
  }
  return value === undefined ? "undefined" : json(value);
}

/** A JSON value as Python: True/False/None, strings in double quotes with JSON's escapes (valid in Python). */
export function pyLiteral(value, indent = "") {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (Array.isArray(value) || typeof value === "object") {
    const pairs = Array.isArray(value) ? value.map((item) => [null, item]) : Object.entries(value);
    const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    if (!pairs.length) return open + close;
    const inner = indent + "    ";
    const items = pairs.map(([key, item]) => (key === null ? "" : `${json(key)}: `) + pyLiteral(item, inner));
    const flat = `${open}${items.join(", ")}${close}`;
    return flat.length <= 60 && !flat.includes("\n") ? flat : `${open}\n${items.map((i) => inner + i).join(",\n")},\n${indent}${close}`;
  }
  return json(value);
}

// -- drizzle.js -------------------------------------------------------------------

function jsConnect(target) {
  const options = target.token ? `, { token: ${json(target.token)} }` : "";
  return `const dz = await Drizzle.connect(${json(target.url)}${options});`;
}

function jsOperation(op, api) {
  const fields = (list) => (list?.length ? `, { fields: ${jsLiteral(list)} }` : "");
  switch (op.kind) {
    case "call": {
      const data = op.data === undefined ? (op.fields?.length ? "undefined" : "") : jsLiteral(op.data);
      const args = [json(op.resource), json(op.action), data].filter(Boolean).join(", ");
      return `const reply = await ${api ?? "dz"}.call(${args}${fields(op.fields)});\nconsole.log(reply);`;
    }
    case "stream": {
      const data = op.data === undefined ? (op.fields?.length ? "undefined" : "") : jsLiteral(op.data);
      const args = [json(op.resource), json(op.action), data].filter(Boolean).join(", ");
      return `for await (const item of dz.stream(${args}${fields(op.fields)})) console.log(item);`;
    }
    case "subscribe":
      return `await dz.subscribe(${json(op.channel)}, (data, meta) => console.log(meta.topic, data)${fields(op.fields)});`;
    case "publish":
      return `const reply = await dz.publish(${json(op.channel)}, ${jsLiteral(op.payload)});\nconsole.log(reply);`;
    default: {
      const frame = { action: op.action };
      if (op.data !== undefined) frame.data = op.data;
      const call = op.action === "__ping__" ? "dz.ping()" : op.action === "__schema__" ? "dz.schema()"
        : `dz.request(${jsLiteral(frame)})`;
      return `const reply = await ${call};\nconsole.log(reply);`;
    }
  }
}

/**
 * The operation as an ES module using drizzle.js (top-level await: a `<script type="module">`).
 * @param {Operation} op
 * @param {Target} target
 * @returns {string}
 */
export function drizzleCode(op, target) {
  return [
    `import { Drizzle } from ${json(target.clientUrl)};`,
    "",
    jsConnect(target),
    jsOperation(op),
    "",
  ].join("\n");
}

// -- TypeScript --------------------------------------------------------------------

/** The member of `api.topics` the codegen gives each topic ("chat" for "chat.{room}"), by pattern. */
export function topicMembers(topics) {
  const taken = new Set();
  const members = new Map();
  for (const { name } of topics) {
    let member = name.replace(/\.?\{[^}]*\}/g, "").replace(/[^A-Za-z0-9_$]/g, "_") || "topic";
    if (taken.has(member)) member = name.replace(/[{}]/g, "").replace(/[^A-Za-z0-9_$]/g, "_");
    while (taken.has(member)) member += "_";
    taken.add(member);
    members.set(name, member);
  }
  return members;
}

function tsKey(name) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `.${name}` : `[${json(name)}]`;
}

/** `api.topics.chat({ room: "lobby" })` for a channel of a declared topic, else null. */
function tsChannel(channel, topics) {
  const members = topicMembers(topics);
  for (const topic of topics) {
    const params = channelParams(topic.name, channel);
    if (params === null) continue;
    const args = topic.params?.length ? jsLiteral(params) : "";
    return `api.topics${tsKey(members.get(topic.name))}(${args})`;
  }
  return null;
}

/**
 * The operation with the generated module's `typed(dz)` (`drizzle-gateway codegen ts -o api.ts`,
 * or `/_explorer/api.ts`): typed input, `fields` paths and reply.
 * @param {Operation} op
 * @param {Target} target
 * @returns {string}
 */
export function typescriptCode(op, target) {
  const fields = (list) => (list?.length ? `, { fields: ${jsLiteral(list)} as const }` : "");
  let body;
  const handle = op.kind === "subscribe" || op.kind === "publish" ? tsChannel(op.channel, target.topics ?? []) : null;
  if (op.kind === "call") {
    const data = op.data === undefined ? (op.fields?.length ? "undefined" : "") : jsLiteral(op.data);
    body = `const reply = await api${tsKey(op.resource)}${tsKey(op.action)}(${data}${fields(op.fields)});\nconsole.log(reply);`;
  } else if (op.kind === "stream") {
    const data = op.data === undefined ? (op.fields?.length ? "undefined" : "") : jsLiteral(op.data);
    body = `for await (const item of api${tsKey(op.resource)}${tsKey(op.action)}(${data}${fields(op.fields)})) {\n  console.log(item);\n}`;
  } else if (op.kind === "subscribe" && handle) {
    body = `await ${handle}.subscribe((data, meta) => console.log(meta.topic, data)${fields(op.fields)});`;
  } else if (op.kind === "publish" && handle) {
    body = `const reply = await ${handle}.publish(${jsLiteral(op.payload)});\nconsole.log(reply);`;
  } else {
    body = jsOperation(op);
  }
  return [
    'import { Drizzle } from "drizzle-gateway-client";',
    'import { typed } from "./api.js"; // drizzle-gateway codegen ts -o api.ts',
    "",
    jsConnect(target),
    "const api = typed(dz);",
    body,
    "",
  ].join("\n");
}

// -- Python ------------------------------------------------------------------------

function pyOperation(op) {
  const indent = "        ";
  const fields = (list) => (list?.length ? `, fields=${pyLiteral(list, indent)}` : "");
  switch (op.kind) {
    case "call": {
      const data = op.data === undefined ? "" : `, ${pyLiteral(op.data, indent)}`;
      if (op.data !== undefined && (op.data === null || typeof op.data !== "object")) {
        return pyOperation({ kind: "request", frame: { resource: op.resource, action: op.action, data: op.data } });
      }
      return [`reply = await client.call(${json(op.resource)}, ${json(op.action)}${data}${fields(op.fields)})`,
        "print(reply)"];
    }
    case "stream": {
      const data = op.data === undefined ? "" : `, ${pyLiteral(op.data, indent)}`;
      return [`async for item in client.stream(${json(op.resource)}, ${json(op.action)}${data}${fields(op.fields)}):`,
        "    print(item)"];
    }
    case "subscribe":
      return [`await client.subscribe(${json(op.channel)}${fields(op.fields)})`,
        "async for event in client.events():", "    print(event.topic, event.data)"];
    case "publish":
      return [`reply = await client.publish(${json(op.channel)}, ${pyLiteral(op.payload, indent)})`, "print(reply)"];
    default: {
      const frame = op.frame ?? { action: op.action, ...(op.data === undefined ? {} : { data: op.data }) };
      const call = op.action === "__ping__" ? "client.ping()" : op.action === "__schema__" ? "client.schema()"
        : `client.request(${pyLiteral(frame, indent)})`;
      return [`reply = await ${call}`, "print(reply)"];
    }
  }
}

/**
 * The operation as a Python script using `drizzle_gateway.client.Client`.
 * @param {Operation} op
 * @param {Target} target
 * @returns {string}
 */
export function pythonCode(op, target) {
  const body = [];
  if (target.token) body.push(`await client.request({"action": "__auth__", "data": {"token": ${json(target.token)}}})`);
  body.push(...pyOperation(op));
  return [
    "import asyncio",
    "",
    "from drizzle_gateway.client import Client",
    "",
    "",
    "async def main() -> None:",
    `    async with Client(${json(target.url)}) as client:`,
    ...body.map((line) => `        ${line}`),
    "",
    "",
    "asyncio.run(main())",
    "",
  ].join("\n");
}

/** The three snippets, by language. */
export function snippets(op, target) {
  return { drizzle: drizzleCode(op, target), python: pythonCode(op, target), typescript: typescriptCode(op, target) };
}

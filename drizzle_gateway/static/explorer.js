/**
 * The schema explorer: reads `__schema__`, lists resources, actions and topics,
 * calls actions from a JSON form and watches or publishes to topics.
 *
 * The schema helpers are pure and exported for tests; `main(document)` runs the page.
 * @module explorer
 */

/**
 * Follow a local `$ref` ("#/components/schemas/Name") into the schema document.
 * @param {Object|null|undefined} schema
 * @param {Object} components the `components` of `__schema__`
 * @returns {Object|null}
 */
export function resolve(schema, components) {
  let current = schema ?? null;
  for (let hops = 0; current && current.$ref && hops < 20; hops++) {
    const name = current.$ref.split("/").at(-1);
    current = components?.schemas?.[name] ?? null;
  }
  return current;
}

/**
 * `schema` with every local `$ref` replaced by what it points to, for reading.
 * @param {*} schema
 * @param {Object} components
 * @returns {*}
 */
export function expandRefs(schema, components, depth = 0) {
  if (Array.isArray(schema)) return schema.map((item) => expandRefs(item, components, depth));
  if (!schema || typeof schema !== "object") return schema;
  if (schema.$ref) return depth > 6 ? schema : expandRefs(resolve(schema, components), components, depth + 1);
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, expandRefs(value, components, depth)]));
}

function mainType(schema) {
  const type = schema.type;
  if (Array.isArray(type)) return type.find((t) => t !== "null") ?? "null";
  if (type) return type;
  if (schema.properties) return "object";
  return undefined;
}

/** Values for string formats that marshmallow's fields accept. */
const FORMAT_SAMPLES = {
  email: () => "ada@example.com",
  uuid: () => "123e4567-e89b-42d3-a456-426614174000",
  uri: () => "https://example.com/",
  url: () => "https://example.com/",
  hostname: () => "example.com",
  ipv4: () => "127.0.0.1",
  ipv6: () => "::1",
  "date-time": (now) => now.toISOString(),
  date: (now) => now.toISOString().slice(0, 10),
  time: (now) => now.toISOString().slice(11, 19),
};

/**
 * A JSON value shaped like `schema` that its own validation accepts, to pre-fill an input form.
 *
 * Each value is, in this order: the schema's `default` (marshmallow's `load_default`),
 * `const`, first of `examples`, `example` (from a field's metadata), first `enum` value;
 * else one built from the type: a current time for `format: date-time` (and the like),
 * a string matching `pattern` (the property's name when it does), within
 * `minLength`/`maxLength`, a number inside `minimum`/`maximum`, `minItems` items.
 * @param {Object|null} schema
 * @param {Object} components
 * @param {{now?: Date, name?: string}} [options] `now` for date-times; `name` of the property
 * @returns {*}
 */
export function skeleton(schema, components, options = {}) {
  return sample(schema, components, options.now ?? new Date(), options.name ?? "", 0);
}

function sample(schema, components, now, name, depth) {
  const resolved = resolve(schema, components);
  if (!resolved || depth > 6) return null;
  if ("default" in resolved) return resolved.default;
  if ("const" in resolved) return resolved.const;
  if (Array.isArray(resolved.examples) && resolved.examples.length) return resolved.examples[0];
  if ("example" in resolved) return resolved.example;
  if (Array.isArray(resolved.enum) && resolved.enum.length) return resolved.enum[0];
  const variants = resolved.oneOf ?? resolved.anyOf;
  if (Array.isArray(variants) && variants.length) return sample(variants[0], components, now, name, depth + 1);
  switch (mainType(resolved)) {
    case "object": {
      const value = {};
      const required = new Set(resolved.required ?? []);
      for (const [property, propertySchema] of Object.entries(resolved.properties ?? {})) {
        if (propertySchema.readOnly) continue;
        value[property] = !required.has(property) && nullable(resolve(propertySchema, components))
          ? null // an optional list that may be null: null says "not given" (an empty `fields` selects nothing)
          : sample(propertySchema, components, now, property, depth + 1);
      }
      return value;
    }
    case "array": {
      const count = Math.max(0, resolved.minItems ?? 0);
      return Array.from({ length: count }, () => sample(resolved.items, components, now, name, depth + 1));
    }
    case "string":
      return sampleString(resolved, name, now);
    case "integer":
      return sampleNumber(resolved, true);
    case "number":
      return sampleNumber(resolved, false);
    case "boolean":
      return false;
    default:
      return null;
  }
}

function nullable(schema) {
  const type = schema?.type;
  return Array.isArray(type) && type.includes("null") && type.includes("array") && !("default" in schema);
}

function sampleString(schema, name, now) {
  const format = FORMAT_SAMPLES[schema.format];
  if (format) return format(now);
  if (typeof schema["x-strftime"] === "string") return strftime(schema["x-strftime"], now);
  const iso = now.toISOString();
  if (schema.pattern) return matchingString(schema.pattern, [name, iso, iso.slice(0, 19), iso.slice(0, 10)]);
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? Infinity;
  return (name || "text").padEnd(min, "x").slice(0, max);
}

/**
 * `now` (UTC) written with a Python strftime `format`, as marshmallow's DateTime/Date/Time
 * fields with a custom `format` read it; directives other than %Y %m %d %H %M %S %f %y %%
 * are left as they are.
 * @param {string} format
 * @param {Date} now
 * @returns {string}
 */
export function strftime(format, now) {
  const two = (n) => String(n).padStart(2, "0");
  const parts = {
    Y: String(now.getUTCFullYear()), y: two(now.getUTCFullYear() % 100), m: two(now.getUTCMonth() + 1),
    d: two(now.getUTCDate()), H: two(now.getUTCHours()), M: two(now.getUTCMinutes()),
    S: two(now.getUTCSeconds()), f: String(now.getUTCMilliseconds() * 1000).padStart(6, "0"), "%": "%",
  };
  return format.replace(/%(.)/g, (directive, letter) => parts[letter] ?? directive);
}

/**
 * 0 when the bounds allow it, else a value one step inside them: apispec writes
 * `Range(min=0, min_inclusive=False)` as a plain `minimum: 0`, so a bound itself
 * may be refused.
 */
function sampleNumber(schema, integer) {
  const step = integer ? 1 : 0.5;
  const number = (value) => (typeof value === "number" ? value : undefined);
  const low = number(schema.exclusiveMinimum) ?? number(schema.minimum);
  const high = number(schema.exclusiveMaximum) ?? number(schema.maximum);
  let value = 0;
  if (low !== undefined && high !== undefined) {
    value = low + step < high ? low + step : (low + high) / 2;
  } else if (low !== undefined) {
    value = low < 0 ? 0 : low + step;
  } else if (high !== undefined) {
    value = high > 0 ? 0 : high - step;
  }
  if (integer) value = Math.floor(value);
  if (typeof schema.multipleOf === "number" && schema.multipleOf > 0) {
    value = Math.ceil(value / schema.multipleOf) * schema.multipleOf;
  }
  return value;
}

function compile(pattern) {
  for (const flags of ["u", ""]) {
    try {
      return new RegExp(pattern, flags);
    } catch {
      // a Python-only construct: try without the unicode flag, then give up
    }
  }
  return null;
}

/**
 * A string that matches the regular expression `pattern`: the first of `hints`
 * that does, else a few common words, else one built from the pattern itself.
 * @param {string} pattern a JSON Schema `pattern` (ECMA-262 syntax)
 * @param {string[]} [hints] preferred values, e.g. the property's name
 * @returns {string} "" when nothing matching was found
 */
export function matchingString(pattern, hints = []) {
  const regex = compile(pattern);
  if (!regex) return hints.find(Boolean) ?? "";
  const candidates = [...hints, "example", "a", "A", "1", "0", "a1", "x", "abc", "123", "a-b", "a_b", "a.b"];
  for (const candidate of candidates) {
    if (candidate && regex.test(candidate)) return candidate;
  }
  const built = buildFrom(pattern);
  return built !== null && regex.test(built) ? built : "";
}

/** One short string for the common regex constructs (classes, groups, quantifiers), or null. */
function buildFrom(pattern) {
  let at = 0;
  const escapes = { d: "0", w: "a", s: " ", D: "a", W: "-", S: "a", b: "", B: "", n: "\n", t: "\t" };

  const charClass = () => {
    const start = at;
    if (pattern[at] === "]") at++;
    while (at < pattern.length && pattern[at] !== "]") at += pattern[at] === "\\" ? 2 : 1;
    const body = pattern.slice(start, at);
    at++; // "]"
    const test = compile(`^[${body}]$`);
    const literal = body.replace(/^\^/, "")[0] ?? "a";
    return ["a", "A", "0", literal, "_", "-", ".", " ", "@"].find((c) => test?.test(c)) ?? null;
  };

  const atom = () => {
    const c = pattern[at++];
    if (c === "^" || c === "$") return "";
    if (c === ".") return "a";
    if (c === "\\") {
      const e = pattern[at++];
      return e in escapes ? escapes[e] : e;
    }
    if (c === "[") return charClass();
    if (c === "(") {
      let lookaround = false;
      if (pattern[at] === "?") {
        const rest = pattern.slice(at + 1);
        if (rest.startsWith(":")) at += 2;
        else if (/^P?<[A-Za-z_]/.test(rest)) at = pattern.indexOf(">", at) + 1;
        else {
          lookaround = true;
          at += rest.startsWith("<") ? 3 : 2;
        }
      }
      const inner = alternatives();
      at++; // ")"
      return lookaround ? "" : inner;
    }
    return c;
  };

  const minimumRepeat = () => {
    const c = pattern[at];
    let min = 1;
    if (c === "*" || c === "?") [min, at] = [0, at + 1];
    else if (c === "+") at++;
    else if (c === "{") {
      const found = /^\{(\d*)(,\d*)?\}/.exec(pattern.slice(at));
      if (found) [min, at] = [Number(found[1] || 0), at + found[0].length];
    }
    if (min !== 1 || c === "+") {
      if (pattern[at] === "?" || pattern[at] === "+") at++; // lazy or possessive
    }
    return min;
  };

  const sequence = () => {
    let out = "";
    while (at < pattern.length && pattern[at] !== "|" && pattern[at] !== ")") {
      const piece = atom();
      if (piece === null) return null;
      out += piece.repeat(minimumRepeat());
    }
    return out;
  };

  const alternatives = () => {
    const first = sequence();
    while (at < pattern.length && pattern[at] === "|") {
      at++;
      sequence();
    }
    return first;
  };

  try {
    return alternatives();
  } catch {
    return null;
  }
}

/** Built-in actions whose input names a channel: pre-filled with one of the contract's topics. */
const CHANNEL_BUILTINS = new Set(["__subscribe__", "__unsubscribe__", "__publish__", "__history__"]);

/**
 * The pre-filled input of an action: `skeleton` of its input schema; for the channel
 * built-ins, a channel of a topic that allows it (and, to publish, a payload of that topic).
 * @param {{name: string, input: Object|null}} act an action of `__schema__`
 * @param {{components: Object, topics: Array}} contract the `__schema__` document
 * @param {{now?: Date}} [options]
 * @returns {*} undefined when the action takes no input
 */
export function prefill(act, contract, options = {}) {
  if (!act.input) return undefined;
  const value = skeleton(act.input, contract.components, options);
  if (!CHANNEL_BUILTINS.has(act.name) || !value || typeof value !== "object") return value;
  const topics = contract.topics ?? [];
  const allowed = act.name === "__publish__" ? topics.filter((t) => t.client_publish)
    : act.name === "__subscribe__" || act.name === "__history__" ? topics.filter((t) => t.client_subscribe) : topics;
  const topic = allowed[0] ?? topics[0];
  if (!topic) return value;
  value.topic = defaultChannel(topic.name);
  if ("payload" in value) value.payload = skeleton(topic.publish ?? topic.payload, contract.components, options);
  return value;
}

/**
 * The selectable field paths of an output schema ("id", "owner", "owner.name"), two levels deep.
 * @param {Object|null} schema
 * @param {Object} components
 * @returns {string[]}
 */
export function fieldPaths(schema, components, prefix = "", depth = 0) {
  let resolved = resolve(schema, components);
  if (resolved && mainType(resolved) === "array") resolved = resolve(resolved.items, components);
  if (!resolved || mainType(resolved) !== "object" || depth > 1) return [];
  const paths = [];
  for (const [name, property] of Object.entries(resolved.properties ?? {})) {
    const path = prefix + name;
    paths.push(path);
    paths.push(...fieldPaths(property, components, `${path}.`, depth + 1));
  }
  return paths;
}

/**
 * A default concrete channel for a topic pattern: each parameter named after itself,
 * "chat.{room}" -> "chat.room".
 * @param {string} pattern
 * @returns {string}
 */
export function defaultChannel(pattern) {
  return pattern.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, "$1");
}

/**
 * Split a docstring into plain text and inline code: reST literals (``x``),
 * interpreted text (`x`) and roles (:class:`x`) become code.
 * @param {string} text
 * @returns {Array<{text: string, code: boolean}>}
 */
export function docSegments(text) {
  const segments = [];
  const inline = /``(.+?)``|(?::[A-Za-z][\w.:+-]*:)?`([^`]+)`_{0,2}/g;
  let last = 0;
  for (const found of text.matchAll(inline)) {
    if (found.index > last) segments.push({ text: text.slice(last, found.index), code: false });
    segments.push({ text: found[1] ?? found[2], code: true });
    last = found.index + found[0].length;
  }
  if (last < text.length) segments.push({ text: text.slice(last), code: false });
  return segments;
}

/**
 * The websocket URL the explorer connects to by default: `wsPath` under the root the
 * explorer is served from, so a proxy that adds a path prefix is followed.
 * @param {string} moduleUrl this module's URL (`import.meta.url`), ".../_explorer/explorer.js"
 * @param {string} wsPath the gateway's websocket path, e.g. "/ws"
 * @returns {string} e.g. "ws://host/prefix/ws"
 */
export function websocketUrl(moduleUrl, wsPath) {
  const url = new URL(wsPath.replace(/^\/+/, ""), new URL("../", moduleUrl));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/** Pretty JSON for display. */
export function pretty(value) {
  return value === undefined ? "(nothing)" : JSON.stringify(value, null, 2);
}

// -- the page ------------------------------------------------------------------

/** Build an element: h("div", {class: "x"}, "text", child). */
function h(document, tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/**
 * Run the explorer in `document`. Never rejects: every failure is shown on the page.
 * @param {Document} document
 */
export async function main(document) {
  const el = (...args) => h(document, ...args);
  const $ = (id) => document.getElementById(id);
  const location = document.defaultView.location;
  const wsPath = document.querySelector('meta[name="drizzle-ws-path"]').content || "/ws";
  $("endpoint").value = new URLSearchParams(location.search).get("ws") ?? websocketUrl(import.meta.url, wsPath);

  /**
   * @type {{dz: any, schema: any, attempt: number, channels: Map<string, string>,
   *   subscriptions: Map<string, {sub: any, topic: string, events: Array}>}}
   */
  const state = { dz: null, schema: null, attempt: 0, channels: new Map(), subscriptions: new Map() };

  function showState(name, text) {
    $("status").dataset.state = name;
    $("status").textContent = text ?? name;
  }

  const doc = (text) => docSegments(text).map(({ text: part, code }) => (code ? el("code", {}, part) : part));

  function problem(title, error, hint) {
    return el("section", { class: "card result", id: "problem", "data-status": "error" },
      el("h3", { class: "plain" }, title),
      el("div", { class: "code" }, error.code ?? "ERROR"),
      el("div", { class: "message" }, error.message ?? String(error)),
      hint ? el("p", { class: "hint" }, hint) : null);
  }

  let Drizzle;
  try {
    ({ Drizzle } = await import(new URL("../drizzle.js", import.meta.url).href));
  } catch (error) {
    showState("closed", "no client");
    $("panel").replaceChildren(problem("Could not load drizzle.js", error));
    return;
  }

  async function connect() {
    const attempt = ++state.attempt;
    const url = $("endpoint").value.trim();
    state.dz?.close();
    state.dz = null;
    state.schema = null;
    state.subscriptions.clear();
    $("title").textContent = "";
    $("sidebar").replaceChildren(el("p", { class: "hint" }, "No contract: not connected."));
    $("panel").replaceChildren(el("p", { class: "hint" }, `Connecting to ${url}…`));
    showState("connecting", "connecting…");
    let dz;
    try {
      dz = await Drizzle.connect(url, { backoff: { initial: 300, max: 5000 } });
    } catch (error) {
      if (attempt !== state.attempt) return;
      showState("closed", "not connected");
      $("panel").replaceChildren(problem(`Could not connect to ${url}`, error,
        "Check the websocket address above and press Connect."));
      return;
    }
    if (attempt !== state.attempt) {
      dz.close();
      return;
    }
    state.dz = dz;
    dz.on("state", (name) => {
      if (state.dz === dz) showState(name);
    });
    showState(dz.state);
    try {
      state.schema = await dz.schema();
    } catch (error) {
      if (attempt === state.attempt) $("panel").replaceChildren(problem("Could not read __schema__", error));
      return;
    }
    if (attempt !== state.attempt) return;
    renderSidebar();
    $("panel").replaceChildren(el("p", { class: "hint" }, "Pick an action to call it, or a topic to watch its events."));
  }

  function renderSidebar() {
    const schema = state.schema;
    $("title").textContent = schema.title;
    const item = (label, badge, select, key) =>
      el("li", {}, el("button", { type: "button", "data-key": key, onclick: select }, label,
        badge ? el("span", { class: "badge" }, badge) : null));
    const resources = schema.resources.map((resource) => el("section", { class: "resource" },
      el("h3", {}, resource.name),
      resource.description ? el("p", {}, doc(resource.description)) : null,
      el("ul", {}, resource.actions.map((act) =>
        item(act.name, null, () => showAction(resource.name, act), `action:${resource.name}.${act.name}`)))));
    const topics = el("ul", {}, schema.topics.map((topic) =>
      item(topic.name, topic.client_publish ? "pub/sub" : "sub", () => showTopic(topic), `topic:${topic.name}`)));
    const builtins = el("ul", {}, schema.builtins.map((act) =>
      item(act.name, null, () => showAction(null, act), `action:${act.name}`)));
    $("sidebar").replaceChildren(
      el("h2", {}, "Resources"), ...resources,
      el("h2", {}, "Topics"), topics,
      el("h2", {}, "Built-in actions"), builtins,
    );
    markLive();
  }

  function markCurrent(key) {
    for (const button of $("sidebar").querySelectorAll("button")) {
      button.setAttribute("aria-current", String(button.dataset.key === key));
    }
  }

  /** Mark the topics with live subscriptions in the sidebar. */
  function markLive() {
    for (const topic of state.schema?.topics ?? []) {
      const button = $("sidebar").querySelector(`button[data-key="topic:${CSS.escape(topic.name)}"]`);
      if (!button) continue;
      const live = [...state.subscriptions.values()].filter((entry) => entry.topic === topic.name).length;
      button.querySelector(".live")?.remove();
      if (live) button.append(el("span", { class: "live", title: `${live} live subscription(s)` }, `● ${live}`));
    }
  }

  function fieldPicker(paths, name) {
    if (!paths.length) return el("p", { class: "hint" }, "No output schema: the whole reply comes back.");
    return el("div", { class: "fields", id: `${name}-fields` },
      paths.map((path) => el("label", {}, el("input", { type: "checkbox", value: path }), ` ${path}`)));
  }

  function chosenFields(name) {
    const boxes = [...document.querySelectorAll(`#${name}-fields input:checked`)];
    return boxes.length ? boxes.map((box) => box.value) : undefined;
  }

  function showError(target, error) {
    target.dataset.status = "error";
    target.replaceChildren(
      el("h3", {}, "Error"),
      el("div", { class: "code" }, error.code ?? "ERROR"),
      el("div", { class: "message" }, error.message ?? String(error)),
      error.details != null ? el("pre", { class: "details" }, pretty(error.details)) : null,
    );
  }

  function showResult(target, send) {
    if (!state.dz) {
      showError(target, { code: "NOT_CONNECTED", message: "not connected: press Connect" });
      return;
    }
    target.dataset.status = "pending";
    target.replaceChildren(el("p", { class: "hint" }, "waiting for the reply…"));
    send(state.dz).then((data) => {
      target.dataset.status = "ok";
      target.replaceChildren(el("h3", {}, "Reply"), el("pre", { class: "reply" }, pretty(data)));
    }, (error) => showError(target, error));
  }

  function parseJson(text, target) {
    if (!text.trim()) return { ok: true, value: undefined };
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (error) {
      target.dataset.status = "error";
      target.replaceChildren(el("h3", {}, "Error"), el("div", { class: "code" }, "NOT JSON"),
        el("div", { class: "message" }, String(error.message)));
      return { ok: false };
    }
  }

  function schemaBox(title, schema) {
    return el("section", { class: "card" }, el("h3", {}, title),
      el("pre", { class: "schema" }, pretty(expandRefs(schema, state.schema.components))));
  }

  function showAction(resourceName, act) {
    const key = resourceName ? `action:${resourceName}.${act.name}` : `action:${act.name}`;
    markCurrent(key);
    const components = state.schema.components;
    const value = prefill(act, state.schema);
    const input = el("textarea", { id: "action-input", spellcheck: "false" }, value === undefined ? "" : pretty(value));
    const result = el("section", { class: "card result", id: "result" }, el("p", { class: "hint" }, "No call yet."));
    const call = () => {
      const parsed = parseJson(input.value, result);
      if (!parsed.ok) return;
      const fields = chosenFields("action");
      const frame = { action: act.name };
      if (resourceName) frame.resource = resourceName;
      if (parsed.value !== undefined) frame.data = parsed.value;
      if (fields) frame.fields = fields;
      showResult(result, (dz) => dz.request(frame));
    };
    $("panel").replaceChildren(
      el("h2", {}, resourceName ? `${resourceName}.${act.name}` : act.name),
      el("p", { class: "doc" }, act.description ? doc(act.description) : "(no description)"),
      el("div", { class: "columns" }, schemaBox("Input schema", act.input), schemaBox("Output schema", act.output)),
      el("section", { class: "card" },
        el("h3", {}, "Data (JSON)"), input,
        el("h3", {}, "Fields (none checked: all)"), fieldPicker(fieldPaths(act.output, components), "action"),
        el("div", { class: "actions" }, el("button", { type: "button", id: "call", onclick: call }, "Call"))),
      result,
    );
  }

  function showTopic(topic) {
    markCurrent(`topic:${topic.name}`);
    const components = state.schema.components;
    const channel = el("input", {
      type: "text", id: "channel", spellcheck: "false",
      value: state.channels.get(topic.name) ?? defaultChannel(topic.name),
    });
    const log = el("ul", { class: "events", id: "events" });
    const subscribeResult = el("div", { class: "result", id: "subscribe-result", role: "status" });
    const liveList = el("p", { class: "live-list", id: "live-channels" });

    const renderLog = () => {
      const entry = state.subscriptions.get(channel.value);
      log.replaceChildren(...(entry?.events ?? []).map(({ at, data, offset }) =>
        el("li", {}, el("time", {}, at), offset === undefined ? null : el("span", { class: "offset" }, `#${offset}`),
          el("pre", {}, pretty(data)))));
    };
    const renderSubscription = (problemText) => {
      const name = channel.value;
      if (problemText) {
        subscribeResult.dataset.status = "error";
        subscribeResult.textContent = problemText;
      } else {
        const live = state.subscriptions.has(name);
        subscribeResult.dataset.status = live ? "ok" : "";
        subscribeResult.textContent = live ? `subscribed to ${name}` : `not subscribed to ${name}`;
      }
      const channels = [...state.subscriptions].filter(([, entry]) => entry.topic === topic.name).map(([n]) => n);
      liveList.replaceChildren(...(channels.length ? ["Live here: ", ...channels.flatMap((n, i) => [
        i ? ", " : "",
        el("button", { type: "button", class: "link", "data-channel": n, onclick: () => switchTo(n) }, n),
      ])] : []));
      markLive();
    };
    const refresh = () => {
      state.channels.set(topic.name, channel.value);
      renderLog();
      renderSubscription();
    };
    const switchTo = (name) => {
      channel.value = name;
      refresh();
    };

    const subscribe = async () => {
      const name = channel.value;
      if (!state.dz) return renderSubscription("NOT_CONNECTED: press Connect");
      const entry = { sub: null, topic: topic.name, events: [] };
      const previous = state.subscriptions.get(name);
      try {
        await previous?.sub.unsubscribe();
        state.subscriptions.delete(name);
        entry.sub = await state.dz.subscribe(name, (data, meta) => {
          entry.events.unshift({ at: new Date().toLocaleTimeString(), data, offset: meta.offset });
          if (channel.value === name) renderLog();
        }, { fields: chosenFields("topic") });
      } catch (error) {
        if (channel.value === name) renderSubscription(`${error.code ?? "ERROR"}: ${error.message}`);
        return;
      }
      state.subscriptions.set(name, entry);
      if (channel.value === name) refresh();
      else markLive();
    };
    const unsubscribe = async () => {
      const name = channel.value;
      const entry = state.subscriptions.get(name);
      try {
        await entry?.sub.unsubscribe();
      } catch (error) {
        renderSubscription(`${error.code ?? "ERROR"}: ${error.message}`);
        return;
      }
      state.subscriptions.delete(name);
      if (channel.value === name) refresh();
    };
    channel.addEventListener("input", refresh);
    const sections = [
      el("h2", {}, topic.name),
      el("p", { class: "doc" }, topic.description ? doc(topic.description) : "(no description)"),
      schemaBox("Payload schema", topic.payload),
      el("section", { class: "card" },
        el("h3", {}, "Channel"), channel, liveList,
        el("h3", {}, "Fields (none checked: all)"), fieldPicker(fieldPaths(topic.payload, components), "topic"),
        el("div", { class: "actions" },
          el("button", { type: "button", id: "subscribe", onclick: subscribe, disabled: !topic.client_subscribe }, "Subscribe"),
          el("button", { type: "button", class: "secondary", id: "unsubscribe", onclick: unsubscribe }, "Unsubscribe"),
          subscribeResult),
        el("h3", {}, "Live events (newest first)"), log),
    ];
    if (topic.client_publish) {
      const payload = el("textarea", { id: "publish-input", spellcheck: "false" },
        pretty(skeleton(topic.publish ?? topic.payload, components))); // the load side, what __publish__ takes
      const result = el("section", { class: "card result", id: "publish-result" });
      const publish = () => {
        const parsed = parseJson(payload.value, result);
        if (parsed.ok) showResult(result, (dz) => dz.publish(channel.value, parsed.value ?? null));
      };
      sections.push(
        el("section", { class: "card" }, el("h3", {}, "Publish (JSON payload)"), payload,
          el("div", { class: "actions" }, el("button", { type: "button", id: "publish", onclick: publish }, "Publish"))),
        result);
    }
    $("panel").replaceChildren(...sections);
    refresh();
  }

  $("reconnect").addEventListener("click", connect);
  await connect();
}

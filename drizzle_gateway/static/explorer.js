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

/**
 * A JSON value shaped like `schema`, to pre-fill an input form.
 * @param {Object|null} schema
 * @param {Object} components
 * @param {number} [depth]
 * @returns {*}
 */
export function skeleton(schema, components, depth = 0) {
  const resolved = resolve(schema, components);
  if (!resolved || depth > 6) return null;
  if ("default" in resolved) return resolved.default;
  if (Array.isArray(resolved.enum) && resolved.enum.length) return resolved.enum[0];
  switch (mainType(resolved)) {
    case "object": {
      const value = {};
      for (const [name, property] of Object.entries(resolved.properties ?? {})) {
        if (property.readOnly) continue;
        value[name] = skeleton(property, components, depth + 1);
      }
      return value;
    }
    case "array":
      return [];
    case "string":
      return "";
    case "integer":
    case "number":
      return 0;
    case "boolean":
      return false;
    default:
      return null;
  }
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
 * A default concrete channel for a topic pattern: "chat.{room}" -> "chat.room".
 * @param {string} pattern
 * @returns {string}
 */
export function defaultChannel(pattern) {
  return pattern.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, "$1");
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
 * Run the explorer in `document`.
 * @param {Document} document
 */
export async function main(document) {
  const { Drizzle } = await import("/drizzle.js");
  const el = (...args) => h(document, ...args);
  const $ = (id) => document.getElementById(id);
  const location = document.defaultView.location;
  const wsPath = document.querySelector('meta[name="drizzle-ws-path"]').content || "/ws";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  $("endpoint").value = new URLSearchParams(location.search).get("ws") ?? `${scheme}//${location.host}${wsPath}`;

  /** @type {{dz: any, schema: any, subscriptions: Map<string, {sub: any, events: Array}>, current: any}} */
  const state = { dz: null, schema: null, subscriptions: new Map(), current: null };

  function showState(name, text) {
    $("status").dataset.state = name;
    $("status").textContent = text ?? name;
  }

  async function connect() {
    state.dz?.close();
    state.subscriptions.clear();
    showState("connecting", "connecting…");
    try {
      state.dz = await Drizzle.connect($("endpoint").value, { backoff: { initial: 300, max: 5000 } });
    } catch (error) {
      showState("closed", `not connected (${error.code})`);
      return;
    }
    state.dz.on("state", (name) => showState(name));
    showState("open");
    state.schema = await state.dz.schema();
    renderSidebar();
  }

  function renderSidebar() {
    const schema = state.schema;
    $("title").textContent = schema.title;
    const item = (label, badge, select, key) =>
      el("li", {}, el("button", { type: "button", "data-key": key, onclick: select }, label,
        badge ? el("span", { class: "badge" }, badge) : null));
    const resources = schema.resources.map((resource) => el("section", { class: "resource" },
      el("h3", {}, resource.name),
      resource.description ? el("p", {}, resource.description) : null,
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
  }

  function markCurrent(key) {
    for (const button of $("sidebar").querySelectorAll("button")) {
      button.setAttribute("aria-current", String(button.dataset.key === key));
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

  function showResult(target, promise) {
    target.dataset.status = "pending";
    target.replaceChildren(el("p", { class: "hint" }, "waiting for the reply…"));
    promise.then((data) => {
      target.dataset.status = "ok";
      target.replaceChildren(el("h3", {}, "Reply"), el("pre", { class: "reply" }, pretty(data)));
    }, (error) => {
      target.dataset.status = "error";
      target.replaceChildren(
        el("h3", {}, "Error"),
        el("div", { class: "code" }, error.code ?? "ERROR"),
        el("div", { class: "message" }, error.message),
        error.details !== undefined ? el("pre", { class: "details" }, pretty(error.details)) : null,
      );
    });
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

  function showAction(resourceName, act) {
    const key = resourceName ? `action:${resourceName}.${act.name}` : `action:${act.name}`;
    markCurrent(key);
    const components = state.schema.components;
    const input = el("textarea", { id: "action-input", spellcheck: "false" },
      act.input ? pretty(skeleton(act.input, components)) : "");
    const result = el("section", { class: "card result", id: "result" }, el("p", { class: "hint" }, "No call yet."));
    const call = () => {
      const parsed = parseJson(input.value, result);
      if (!parsed.ok) return;
      const fields = chosenFields("action");
      const frame = { action: act.name };
      if (resourceName) frame.resource = resourceName;
      if (parsed.value !== undefined) frame.data = parsed.value;
      if (fields) frame.fields = fields;
      showResult(result, state.dz.request(frame));
    };
    $("panel").replaceChildren(
      el("h2", {}, resourceName ? `${resourceName}.${act.name}` : act.name),
      el("p", { class: "doc" }, act.description || "(no description)"),
      el("div", { class: "columns" },
        el("section", { class: "card" }, el("h3", {}, "Input schema"), el("pre", {}, pretty(expandRefs(act.input, components)))),
        el("section", { class: "card" }, el("h3", {}, "Output schema"), el("pre", {}, pretty(expandRefs(act.output, components))))),
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
    const channel = el("input", { type: "text", id: "channel", value: defaultChannel(topic.name), spellcheck: "false" });
    const log = el("ul", { class: "events", id: "events" });
    const subscribeResult = el("div", { class: "result", id: "subscribe-result" });
    const renderLog = () => {
      const entry = state.subscriptions.get(channel.value);
      log.replaceChildren(...(entry?.events ?? []).map(({ at, data }) =>
        el("li", {}, el("time", {}, at), el("pre", {}, pretty(data)))));
    };
    const subscribe = async () => {
      const name = channel.value;
      await state.subscriptions.get(name)?.sub.unsubscribe().catch(() => {});
      const entry = { sub: null, events: [] };
      try {
        entry.sub = await state.dz.subscribe(name, (data) => {
          entry.events.unshift({ at: new Date().toLocaleTimeString(), data });
          if (channel.value === name) renderLog();
        }, { fields: chosenFields("topic") });
      } catch (error) {
        subscribeResult.dataset.status = "error";
        subscribeResult.textContent = `${error.code}: ${error.message}`;
        return;
      }
      state.subscriptions.set(name, entry);
      subscribeResult.dataset.status = "ok";
      subscribeResult.textContent = `subscribed to ${name}`;
      renderLog();
    };
    const unsubscribe = async () => {
      const entry = state.subscriptions.get(channel.value);
      state.subscriptions.delete(channel.value);
      await entry?.sub.unsubscribe();
      subscribeResult.dataset.status = "";
      subscribeResult.textContent = `not subscribed to ${channel.value}`;
      renderLog();
    };
    channel.addEventListener("input", renderLog);
    const sections = [
      el("h2", {}, topic.name),
      el("p", { class: "doc" }, topic.description || "(no description)"),
      el("section", { class: "card" }, el("h3", {}, "Payload schema"), el("pre", {}, pretty(expandRefs(topic.payload, components)))),
      el("section", { class: "card" },
        el("h3", {}, "Channel"), channel,
        el("h3", {}, "Fields (none checked: all)"), fieldPicker(fieldPaths(topic.payload, components), "topic"),
        el("div", { class: "actions" },
          el("button", { type: "button", id: "subscribe", onclick: subscribe, disabled: !topic.client_subscribe }, "Subscribe"),
          el("button", { type: "button", class: "secondary", id: "unsubscribe", onclick: unsubscribe }, "Unsubscribe"),
          subscribeResult),
        el("h3", {}, "Live events (newest first)"), log),
    ];
    if (topic.client_publish) {
      const payload = el("textarea", { id: "publish-input", spellcheck: "false" }, pretty(skeleton(topic.payload, components)));
      const result = el("section", { class: "card result", id: "publish-result" });
      const publish = () => {
        const parsed = parseJson(payload.value, result);
        if (parsed.ok) showResult(result, state.dz.publish(channel.value, parsed.value ?? null));
      };
      sections.push(
        el("section", { class: "card" }, el("h3", {}, "Publish (JSON payload)"), payload,
          el("div", { class: "actions" }, el("button", { type: "button", id: "publish", onclick: publish }, "Publish"))),
        result);
    }
    $("panel").replaceChildren(...sections);
    renderLog();
  }

  $("reconnect").addEventListener("click", connect);
  await connect();
}

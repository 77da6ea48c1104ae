/**
 * The explorer page: connects (with a token, when one is entered), reads `__schema__`,
 * lists resources, actions and topics, calls actions from a JSON form checked against
 * its schema, watches and publishes to topics, keeps a call history and a frame log,
 * and writes each call as code.
 *
 * The parts live beside it: explorer-schema.js (pre-fills), explorer-check.js (the
 * schema check), explorer-types.js (TypeScript names), explorer-code.js (snippets),
 * explorer-store.js (history, frames, close codes), explorer-view.js (DOM pieces).
 * `main(document)` runs the page.
 * @module explorer
 */

import { check, say } from "./explorer-check.js";
import { operationOf, snippets } from "./explorer-code.js";
import { defaultChannel, fieldPaths, offered, prefill, skeleton } from "./explorer-schema.js";
import { CallHistory, closeText, FrameLog, recordingWebSocket } from "./explorer-store.js";
import { codeCard, docNodes, elements, frameItem, pretty, schemaCard } from "./explorer-view.js";

export { docSegments, pretty } from "./explorer-view.js";

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

/** What to do after a close, by code. */
const CLOSE_ADVICE = {
  4001: "Enter a token above and press Connect.",
  1009: "Send a smaller frame.",
};

/**
 * Run the explorer in `document`. Never rejects: every failure is shown on the page.
 * @param {Document} document
 */
export async function main(document) {
  const window = document.defaultView;
  const el = elements(document);
  const $ = (id) => document.getElementById(id);
  const wsPath = document.querySelector('meta[name="drizzle-ws-path"]').content || "/ws";
  $("endpoint").value = new URLSearchParams(window.location.search).get("ws") ?? websocketUrl(import.meta.url, wsPath);
  const clientUrl = new URL("../drizzle.js", import.meta.url).href;

  let storage = null;
  try {
    storage = window.localStorage;
  } catch {
    // storage disabled: the history lasts for the page
  }
  const history = new CallHistory(storage);
  const frames = new FrameLog();

  /**
   * @type {{dz: any, options: any, schema: any, attempt: number, token: string, url: string,
   *   closed: {code: number, reason: string}|null, channels: Map<string, string>,
   *   subscriptions: Map<string, {sub: any, topic: string, events: Array}>}}
   */
  const state = {
    dz: null, options: null, schema: null, attempt: 0, token: "", url: "", closed: null,
    channels: new Map(), subscriptions: new Map(),
  };

  function showState(name, text) {
    $("status").dataset.state = name;
    $("status").textContent = text ?? name;
  }

  /** Say why the connection closed (or clear it, with no text). */
  function notice(text) {
    $("notice").textContent = text ?? "";
    $("notice").hidden = !text;
  }

  /** Narrow screens show the list or the panel: `view` says which. */
  function show(view) {
    document.body.dataset.view = view;
    if (view === "panel") window.scrollTo(0, 0);
  }

  function problem(title, error, hint) {
    return el("section", { class: "card result", id: "problem", "data-status": "error" },
      el("h3", { class: "plain" }, title),
      el("div", { class: "code" }, error.code ?? "ERROR"),
      el("div", { class: "message" }, error.message ?? String(error)),
      hint ? el("p", { class: "hint" }, hint) : null);
  }

  // -- the frame log -------------------------------------------------------------

  frames.listen((record) => {
    const list = $("frame-list");
    if (record === null) list.replaceChildren();
    else list.append(frameItem(el, record));
    while (list.childElementCount > frames.records.length) list.firstElementChild.remove();
    $("frame-count").textContent = String(frames.records.length);
    if ($("frames").open) list.lastElementChild?.scrollIntoView({ block: "nearest" });
  });
  $("clear-frames").addEventListener("click", () => frames.clear());

  let Drizzle;
  let shouldReconnect;
  try {
    ({ Drizzle, shouldReconnect } = await import(clientUrl));
  } catch (error) {
    showState("closed", "no client");
    $("panel").replaceChildren(problem("Could not load drizzle.js", error));
    return;
  }

  // -- connecting ------------------------------------------------------------------

  async function connect() {
    const attempt = ++state.attempt;
    const url = $("endpoint").value.trim();
    state.token = $("token").value;
    state.dz?.close();
    state.dz = null;
    state.schema = null;
    state.url = url;
    state.closed = null;
    state.subscriptions.clear();
    notice(null);
    $("title").textContent = "";
    $("sidebar").replaceChildren(el("p", { class: "hint" }, "No contract: not connected."));
    $("panel").replaceChildren(el("p", { class: "hint" }, `Connecting to ${url}…`));
    showState("connecting", "connecting…");
    const live = () => attempt === state.attempt;
    const closed = (event) => {
      state.closed = { code: event.code, reason: event.reason };
      const reconnecting = state.dz !== null && state.dz.state !== "closed" && shouldReconnect(event.code);
      notice(`Connection closed: ${closeText(event.code, event.reason)}.`
        + (reconnecting ? " Reconnecting…" : ` ${CLOSE_ADVICE[event.code] ?? ""}`).trimEnd());
      $("status").title = closeText(event.code, event.reason);
    };
    const options = {
      backoff: { initial: 300, max: 5000 },
      WebSocket: recordingWebSocket(window.WebSocket, frames, { live, closed }),
    };
    if (state.token) options.token = () => state.token; // sent with __auth__ on every (re)connect
    let dz;
    try {
      dz = await Drizzle.connect(url, options);
    } catch (error) {
      if (!live()) return;
      showState("closed", "not connected");
      show("panel");
      $("panel").replaceChildren(problem(`Could not connect to ${url}`, error,
        error.code === "UNAUTHENTICATED" ? "The gateway refused the token: check it and press Connect."
          : "Check the websocket address above and press Connect."));
      return;
    }
    if (!live()) {
      dz.close();
      return;
    }
    state.dz = dz;
    state.options = options;
    dz.on("state", (name) => {
      if (state.dz !== dz) return;
      showState(name, name === "closed" && state.closed ? `closed (${state.closed.code})` : undefined);
      if (name === "open") notice(null);
    });
    $("status").title = "";
    showState(dz.state);
    if (await loadContract()) {
      $("panel").replaceChildren(el("p", { class: "hint" }, locked()
        ? "This gateway shows its contract once you authenticate: enter a token above and press Connect, or call __auth__."
        : "Pick an action to call it, or a topic to watch its events."));
    }
  }

  /** Read `__schema__` again and list it; false (and the problem shown) when it failed. */
  async function loadContract() {
    const dz = state.dz;
    let schema;
    try {
      schema = await dz.schema();
    } catch (error) {
      if (state.dz === dz) $("panel").replaceChildren(problem("Could not read __schema__", error));
      return false;
    }
    if (state.dz !== dz) return false;
    state.schema = schema;
    renderSidebar();
    return true;
  }

  /** Whether the contract is hidden until authentication (only the built-ins are listed). */
  function locked() {
    const schema = state.schema;
    return !schema.resources.length && !schema.topics.length && schema.builtins.some((b) => b.name === "__auth__");
  }

  /** After a successful `__auth__`: use its token from now on, and list what the user may now see. */
  async function authenticated(token) {
    state.token = token;
    $("token").value = token;
    if (state.options) state.options.token = () => state.token;
    await loadContract();
  }

  // -- the sidebar -------------------------------------------------------------------

  function renderSidebar() {
    const schema = state.schema;
    $("title").textContent = schema.title;
    const item = (label, badge, select, key) =>
      el("li", {}, el("button", { type: "button", "data-key": key, onclick: select }, label,
        badge ? el("span", { class: "badge" }, badge) : null));
    const resources = schema.resources.map((resource) => el("section", { class: "resource" },
      el("h3", {}, resource.name),
      resource.description ? el("p", {}, docNodes(el, resource.description)) : null,
      el("ul", {}, resource.actions.map((act) =>
        item(act.name, null, () => showAction(resource.name, act), `action:${resource.name}.${act.name}`)))));
    const topics = el("ul", {}, schema.topics.map((topic) =>
      item(topic.name, topic.client_publish ? "pub/sub" : "sub", () => showTopic(topic), `topic:${topic.name}`)));
    const builtins = el("ul", {}, schema.builtins.filter((act) => offered(act.name, schema)).map((act) =>
      item(act.name, null, () => showAction(null, act), `action:${act.name}`)));
    $("sidebar").replaceChildren(
      el("h2", {}, "Resources"), ...resources,
      el("h2", {}, "Topics"), topics,
      el("h2", {}, "Built-in actions"), builtins,
      el("section", { id: "history" }),
    );
    renderHistory();
    markLive();
  }

  function renderHistory() {
    const entries = history.of(state.url).slice(0, 10);
    const box = $("history");
    if (!box) return;
    box.replaceChildren(
      el("h2", {}, "History", entries.length
        ? el("button", { type: "button", class: "clear", id: "clear-history", onclick: clearHistory }, "clear") : null),
      entries.length ? el("ol", { class: "history" }, entries.map((entry, index) =>
        el("li", {}, el("button", { type: "button", "data-history": String(index), onclick: () => replay(entry) },
          historyLabel(entry), el("span", { class: `badge outcome-${entry.outcome === "ok" ? "ok" : "error"}` },
            entry.outcome))))) : el("p", {}, "Calls you make are kept here (in this browser)."));
  }

  function clearHistory() {
    history.clear(state.url);
    renderHistory();
  }

  function historyLabel(entry) {
    const { resource, action, data } = entry.frame;
    if (resource) return `${resource}.${action}`;
    return data?.topic ? `${action} ${data.topic}` : action;
  }

  /** Open what `entry` called, its input as it was sent; nothing is sent. */
  function replay(entry) {
    const schema = state.schema;
    if (entry.key.startsWith("topic:")) {
      const topic = schema.topics.find((t) => `topic:${t.name}` === entry.key);
      if (topic) showTopic(topic, { channel: entry.frame.data?.topic, payload: entry.frame.data?.payload });
      return;
    }
    const { resource, action, data, fields } = entry.frame;
    const act = resource
      ? schema.resources.find((r) => r.name === resource)?.actions.find((a) => a.name === action)
      : schema.builtins.find((b) => b.name === action);
    if (act) showAction(resource ?? null, act, { data, fields });
  }

  function record(key, frame, outcome) {
    history.add({ at: Date.now(), gateway: state.url, key, frame, outcome });
    renderHistory();
  }

  function markCurrent(key) {
    for (const button of $("sidebar").querySelectorAll("button[data-key]")) {
      button.setAttribute("aria-current", String(button.dataset.key === key));
    }
    show("panel");
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

  // -- forms ---------------------------------------------------------------------------

  function fieldPicker(paths, name, chosen = [], onchange = undefined) {
    if (!paths.length) return el("p", { class: "hint" }, "No output schema: the whole reply comes back.");
    return el("div", { class: "fields", id: `${name}-fields` }, paths.map((path) => el("label", {},
      el("input", { type: "checkbox", value: path, checked: chosen.includes(path), onchange }), ` ${path}`)));
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

  /** Send with `send(dz)`, show the reply or the error in `target`, keep the call in the history. */
  function showResult(target, send, key, frame, onReply = undefined) {
    if (!state.dz) {
      showError(target, { code: "NOT_CONNECTED", message: "not connected: press Connect" });
      return;
    }
    target.dataset.status = "pending";
    target.replaceChildren(el("p", { class: "hint" }, "waiting for the reply…"));
    send(state.dz).then((data) => {
      target.dataset.status = "ok";
      target.replaceChildren(el("h3", {}, "Reply"), el("pre", { class: "reply" }, pretty(data)));
      record(key, frame, "ok");
      onReply?.(data);
    }, (error) => {
      showError(target, error);
      record(key, frame, error.code ?? "ERROR");
    });
  }

  /**
   * Run a streaming action (`"stream": true` in the contract): each item is listed as it comes,
   * Stop cancels the stream (`__cancel__`), and the end or the error closes the list.
   */
  function showStream(target, frame, key) {
    if (!state.dz) {
      showError(target, { code: "NOT_CONNECTED", message: "not connected: press Connect" });
      return;
    }
    const items = el("ol", { class: "stream-items", id: "stream-items" });
    const status = el("p", { class: "hint", id: "stream-status", role: "status" }, "streaming…");
    const reader = state.dz.stream(frame.resource, frame.action, frame.data, frame.fields ? { fields: frame.fields } : {});
    const stop = el("button", { type: "button", class: "secondary", id: "stream-stop", onclick: () => reader.return() },
      "Stop");
    target.dataset.status = "pending";
    target.replaceChildren(el("h3", {}, "Items"), items, status, stop);
    (async () => {
      let count = 0;
      try {
        for await (const item of reader) {
          count += 1;
          items.append(el("li", {}, el("pre", { class: "reply" }, pretty(item))));
        }
        target.dataset.status = "ok";
        status.textContent = `ended: ${count} item${count === 1 ? "" : "s"}`;
        record(key, frame, "ok");
      } catch (error) {
        target.dataset.status = "error";
        status.replaceWith(el("div", { class: "code" }, error.code ?? "ERROR"),
          el("div", { class: "message" }, `after ${count} item${count === 1 ? "" : "s"}: ${error.message ?? String(error)}`));
        record(key, frame, error.code ?? "ERROR");
      } finally {
        stop.remove();
      }
    })();
  }

  function parseJson(text) {
    if (!text.trim()) return { ok: true, value: undefined };
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (error) {
      return { ok: false, error: String(error.message) };
    }
  }

  /**
   * The JSON in `textarea`, checked against `schema` as the user types: `current()` gives
   * {value, problems} or {error} (not JSON), and the line under the box says which.
   */
  function checked(textarea, schema, line, onchange) {
    const components = state.schema.components;
    const current = () => {
      const parsed = parseJson(textarea.value);
      if (!parsed.ok) return { error: parsed.error };
      if (parsed.value === undefined || !schema) return { value: parsed.value, problems: [] };
      return { value: parsed.value, problems: check(parsed.value, schema, components) };
    };
    const render = () => {
      const now = current();
      line.dataset.status = now.error || now.problems.length ? "error" : "ok";
      if (now.error) line.replaceChildren(`Not JSON: ${now.error}`);
      else if (!now.problems.length) line.replaceChildren(schema ? "✓ matches the schema" : "any JSON");
      else line.replaceChildren(el("ul", {}, now.problems.map((p) => el("li", {}, say(p)))));
      onchange?.(now);
    };
    textarea.addEventListener("input", render);
    render();
    return current;
  }

  /**
   * Whether `now` may be sent: not when it does not parse, nor when it fails the check
   * (unless `force`); then `target` says why and offers `sendAnyway`.
   */
  function mayGo(now, target, force, sendAnyway) {
    if (now.error) {
      target.dataset.status = "error";
      target.replaceChildren(el("h3", {}, "Error"), el("div", { class: "code" }, "NOT JSON"),
        el("div", { class: "message" }, now.error));
      return false;
    }
    if (now.problems.length && !force) {
      target.dataset.status = "error";
      target.replaceChildren(el("h3", {}, "Not sent"), el("div", { class: "code" }, "SCHEMA CHECK"),
        el("ul", { class: "message" }, now.problems.map((p) => el("li", {}, say(p)))),
        el("p", { class: "hint" }, "The server is the judge: ",
          el("button", { type: "button", class: "secondary", id: "send-anyway", onclick: sendAnyway }, "Send anyway")));
      return false;
    }
    return true;
  }

  function target() {
    return { url: state.url, clientUrl, token: state.token || undefined, topics: state.schema.topics };
  }

  // -- an action -------------------------------------------------------------------------

  /** The panel of an action; `initial` (from the history) replaces the pre-fill. Nothing is sent until Call. */
  function showAction(resourceName, act, initial = undefined) {
    const key = resourceName ? `action:${resourceName}.${act.name}` : `action:${act.name}`;
    markCurrent(key);
    const components = state.schema.components;
    const value = initial ? initial.data : prefill(act, state.schema);
    const input = el("textarea", { id: "action-input", spellcheck: "false", "data-send": "call" },
      value === undefined ? "" : pretty(value));
    const checkLine = el("div", { class: "check", id: "action-check", role: "status" });
    const result = el("section", { class: "card result", id: "result" }, el("p", { class: "hint" }, "No call yet."));
    const code = codeCard(el, window);
    const frameOf = (data) => {
      const frame = { action: act.name };
      if (resourceName) frame.resource = resourceName;
      if (data !== undefined) frame.data = data;
      const fields = chosenFields("action");
      if (fields) frame.fields = fields;
      return frame;
    };
    const refreshCode = (now) => code.update(now.error ? `// the data is not JSON yet: ${now.error}\n`
      : snippets(operationOf(frameOf(now.value), act.stream === true), target()));
    const current = checked(input, act.input, checkLine, refreshCode);
    const send = (anyway = false) => {
      const now = current();
      if (!mayGo(now, result, anyway, () => send(true))) return;
      const frame = frameOf(now.value);
      if (act.stream) {
        showStream(result, frame, key);
        return;
      }
      showResult(result, (dz) => dz.request(frame), key, frame,
        act.name === "__auth__" && !resourceName ? () => authenticated(frame.data.token) : undefined);
    };
    const paths = fieldPaths(act.output, components);
    $("panel").replaceChildren(
      el("h2", {}, resourceName ? `${resourceName}.${act.name}` : act.name),
      el("p", { class: "doc" }, act.description ? docNodes(el, act.description) : "(no description)"),
      el("div", { class: "columns" },
        schemaCard(el, "Input", act.input, "in", components, "none: the action takes no data"),
        schemaCard(el, "Output", act.output, "out", components, "none: the reply is any JSON")),
      el("section", { class: "card" },
        el("h3", {}, "Data (JSON)"),
        act.input ? el("p", { class: "hint" }, initial ? "As sent before. Nothing is sent until you press Call."
          : "Pre-filled with example values from the schema. Nothing is sent until you press Call.") : null,
        input, checkLine,
        el("h3", {}, "Fields (none checked: all)"),
        fieldPicker(paths, "action", initial?.fields ?? [], () => refreshCode(current())),
        el("div", { class: "actions" },
          el("button", { type: "button", id: "call", onclick: () => send() }, "Call"),
          el("span", { class: "hint keys" }, "Ctrl+Enter (⌘+Enter)"))),
      result,
      code.card,
    );
    refreshCode(current());
  }

  // -- a topic -----------------------------------------------------------------------------

  function showTopic(topic, initial = {}) {
    const key = `topic:${topic.name}`;
    markCurrent(key);
    const components = state.schema.components;
    const channel = el("input", {
      type: "text", id: "channel", spellcheck: "false", "data-send": "subscribe",
      value: initial.channel ?? state.channels.get(topic.name) ?? defaultChannel(topic.name),
    });
    const log = el("ul", { class: "events", id: "events" });
    const subscribeResult = el("div", { class: "result", id: "subscribe-result", role: "status" });
    const liveList = el("p", { class: "live-list", id: "live-channels" });
    const code = codeCard(el, window);
    let publishCurrent = null;

    const refreshCode = () => {
      const now = publishCurrent?.();
      const op = now && !now.error && now.value !== undefined // a payload to publish, else the subscription
        ? { kind: "publish", channel: channel.value, payload: now.value }
        : { kind: "subscribe", channel: channel.value, fields: chosenFields("topic") };
      code.update(snippets(op, target()));
    };
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
      refreshCode();
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
      const fields = chosenFields("topic");
      const frame = { action: "__subscribe__", data: { topic: name, ...(fields ? { fields } : {}) } };
      try {
        await previous?.sub.unsubscribe();
        state.subscriptions.delete(name);
        entry.sub = await state.dz.subscribe(name, (data, meta) => {
          entry.events.unshift({ at: new Date().toLocaleTimeString(), data, offset: meta.offset });
          if (channel.value === name) renderLog();
        }, { fields });
      } catch (error) {
        record(key, frame, error.code ?? "ERROR");
        if (channel.value === name) renderSubscription(`${error.code ?? "ERROR"}: ${error.message}`);
        return;
      }
      record(key, frame, "ok");
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
      el("p", { class: "doc" }, topic.description ? docNodes(el, topic.description) : "(no description)"),
      el("div", { class: "columns" },
        schemaCard(el, "Events", topic.payload, "out", components),
        topic.client_publish ? schemaCard(el, "Publish", topic.publish ?? topic.payload, "in", components) : null),
      el("section", { class: "card" },
        el("h3", {}, "Channel"), channel, liveList,
        el("h3", {}, "Fields (none checked: all)"), fieldPicker(fieldPaths(topic.payload, components), "topic", [], refreshCode),
        el("div", { class: "actions" },
          el("button", { type: "button", id: "subscribe", onclick: subscribe, disabled: !topic.client_subscribe }, "Subscribe"),
          el("button", { type: "button", class: "secondary", id: "unsubscribe", onclick: unsubscribe }, "Unsubscribe"),
          subscribeResult),
        el("h3", {}, "Live events (newest first)"), log),
    ];
    if (topic.client_publish) {
      const schema = topic.publish ?? topic.payload; // the load side, what __publish__ takes
      const payload = el("textarea", { id: "publish-input", spellcheck: "false", "data-send": "publish" },
        pretty(initial.payload !== undefined ? initial.payload : skeleton(schema, components)));
      const checkLine = el("div", { class: "check", id: "publish-check", role: "status" });
      const result = el("section", { class: "card result", id: "publish-result" });
      publishCurrent = checked(payload, schema, checkLine, () => refreshCode());
      const publish = (anyway = false) => {
        const now = publishCurrent();
        if (!mayGo(now, result, anyway, () => publish(true))) return;
        const frame = { action: "__publish__", data: { topic: channel.value, payload: now.value ?? null } };
        showResult(result, (dz) => dz.publish(frame.data.topic, frame.data.payload), key, frame);
      };
      sections.push(
        el("section", { class: "card" }, el("h3", {}, "Publish (JSON payload)"),
          el("p", { class: "hint" }, "Pre-filled with example values from the schema. Nothing is sent until you press Publish."),
          payload, checkLine,
          el("div", { class: "actions" }, el("button", { type: "button", id: "publish", onclick: () => publish() }, "Publish"),
            el("span", { class: "hint keys" }, "Ctrl+Enter (⌘+Enter)"))),
        result);
    }
    sections.push(code.card);
    $("panel").replaceChildren(...sections);
    refresh();
  }

  // -- keys, buttons ------------------------------------------------------------------------

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const id = event.target?.dataset?.send ?? (document.getElementById("call") ? "call" : null);
    const button = id ? document.getElementById(id) : null;
    if (!button || button.disabled) return;
    event.preventDefault();
    button.click();
  });
  $("back").addEventListener("click", () => show("list"));
  $("reconnect").addEventListener("click", connect);
  $("auth").addEventListener("submit", (event) => { // Enter in the token box
    event.preventDefault();
    connect();
  });
  show("list");
  await connect();
}

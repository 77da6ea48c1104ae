/**
 * The explorer's building blocks in the DOM: elements, docstrings with inline code,
 * the collapsible schema view (types named as the TypeScript codegen names them), the
 * copy-as-code card and the lines of the frame log.
 * @module explorer-view
 */

import { expandRefs } from "./explorer-schema.js";
import { fieldsOf, shape } from "./explorer-types.js";

/** Pretty JSON for display. */
export function pretty(value) {
  return value === undefined ? "(nothing)" : JSON.stringify(value, null, 2);
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
 * An element factory for `document`: el("div", {class: "x", onclick: fn}, "text", child).
 * @param {Document} document
 * @returns {(tag: string, attrs?: Object, ...children: *) => HTMLElement}
 */
export function elements(document) {
  return (tag, attrs = {}, ...children) => {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs ?? {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
      else element.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      element.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return element;
  };
}

/** A docstring as text and `<code>` nodes. */
export function docNodes(el, text) {
  return docSegments(text).map(({ text: part, code }) => (code ? el("code", {}, part) : part));
}

function fieldLine(el, field, side, components) {
  const label = el("code", { class: "field" }, `${field.name}${field.optional ? "?" : ""}: ${field.type}`);
  const extra = [
    field.notes.length ? el("span", { class: "notes" }, field.notes.join(" · ")) : null,
    field.description ? el("span", { class: "desc" }, field.description) : null,
  ];
  if (!field.shape) return el("li", { "data-field": field.name }, label, ...extra);
  const nested = el("ul", { class: "tree" });
  const details = el("details", { "data-field": field.name }, el("summary", {}, label, ...extra), nested);
  details.addEventListener("toggle", () => {
    if (!details.open || nested.childElementCount) return; // unfolded on demand: a schema may nest itself
    nested.append(...fieldsOf(field.shape.node, side, components).map((sub) => fieldLine(el, sub, side, components)));
  });
  return el("li", {}, details);
}

/**
 * A card with a schema as the TypeScript codegen types it, its fields one per line and
 * nested objects folded; the JSON Schema itself folded below.
 * @param {Function} el the element factory
 * @param {string} title
 * @param {*} schema
 * @param {"in"|"out"} side
 * @param {Object} components
 * @param {string} [none] what to say when there is no schema
 * @returns {HTMLElement}
 */
export function schemaCard(el, title, schema, side, components, none = "none: any JSON") {
  if (schema === null || schema === undefined) {
    return el("section", { class: "card schema-card" }, el("h3", {}, title), el("p", { class: "hint" }, none));
  }
  const { type, fields } = shape(schema, side, components);
  const tree = fields.length
    ? el("details", { class: "schema-tree", open: true },
      el("summary", {}, el("code", { class: "type" }, type)),
      el("ul", { class: "tree" }, fields.map((field) => fieldLine(el, field, side, components))))
    : el("p", { class: "schema-tree" }, el("code", { class: "type" }, type));
  return el("section", { class: "card schema-card" }, el("h3", {}, title), tree,
    el("details", { class: "raw" }, el("summary", {}, "JSON Schema"),
      el("pre", { class: "schema" }, pretty(expandRefs(schema, components)))));
}

export const LANGUAGES = Object.freeze([["drizzle", "drizzle.js"], ["python", "Python"], ["typescript", "TypeScript"]]);

/**
 * The copy-as-code card: one tab per language; `update(snippets | message)` refreshes it.
 * @param {Function} el
 * @param {Window} window
 * @returns {{card: HTMLElement, update: (code: Object|string) => void}}
 */
export function codeCard(el, window) {
  const blocks = new Map(LANGUAGES.map(([id]) => [id, el("pre", { class: "code", id: `code-${id}`, hidden: true })]));
  const copied = el("span", { class: "copied", role: "status" });
  let current = window.localStorage?.getItem("drizzle-explorer:language") ?? "drizzle";
  if (!blocks.has(current)) current = "drizzle";
  const tabs = LANGUAGES.map(([id, label]) =>
    el("button", { type: "button", class: "tab", "data-language": id, onclick: () => select(id) }, label));
  const select = (id) => {
    current = id;
    try {
      window.localStorage?.setItem("drizzle-explorer:language", id);
    } catch {
      // storage disabled: the choice lasts for the page
    }
    for (const tab of tabs) tab.setAttribute("aria-pressed", String(tab.dataset.language === id));
    for (const [language, block] of blocks) block.hidden = language !== id;
    copied.textContent = "";
  };
  const copy = async () => {
    const text = blocks.get(current).textContent;
    try {
      await window.navigator.clipboard.writeText(text);
      copied.textContent = "copied";
    } catch {
      const range = window.document.createRange(); // no clipboard here: select it for Ctrl+C
      range.selectNodeContents(blocks.get(current));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      copied.textContent = "selected: press Ctrl+C";
    }
  };
  const card = el("section", { class: "card code-card" },
    el("h3", {}, "Copy as code"),
    el("div", { class: "tabs" }, tabs, el("button", { type: "button", class: "secondary", id: "copy-code", onclick: copy }, "Copy"), copied),
    [...blocks.values()]);
  select(current);
  const update = (code) => {
    for (const [id, block] of blocks) block.textContent = typeof code === "string" ? code : code[id];
    copied.textContent = "";
  };
  return { card, update };
}

const ARROWS = { out: "↑", in: "↓", open: "•", close: "×", error: "!" };

/** One line of the frame log. */
export function frameItem(el, record) {
  const time = new Date(record.at).toLocaleTimeString();
  const cut = record.length > record.text.length ? ` … (${record.length} characters)` : "";
  return el("li", { "data-direction": record.direction },
    el("span", { class: "arrow", title: record.direction }, ARROWS[record.direction] ?? "?"),
    el("time", {}, time), el("code", {}, record.text + cut));
}

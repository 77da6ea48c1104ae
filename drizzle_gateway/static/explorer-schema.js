/**
 * The explorer's reading of JSON Schema: `$ref`s, the example values that pre-fill
 * its inputs, the `fields` paths of an output, the channels of a topic.
 *
 * Pure functions, unit-tested under node (tests/js/explorer.test.mjs).
 * @module explorer-schema
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

/** What a string without format, pattern or example is pre-filled with (padded to its `minLength`). */
export const EXAMPLE_TEXT = "example";

/**
 * A JSON value shaped like `schema` that its own validation accepts, to pre-fill an input form.
 *
 * Each value is, in this order: the schema's `default` (marshmallow's `load_default`),
 * `const`, first of `examples`, `example` (from a field's metadata), first `enum` value;
 * else one built from the type: a current time for `format: date-time` (and the like),
 * a string matching `pattern`, `"example"` within `minLength`/`maxLength`, a number
 * inside `minimum`/`maximum`, `minItems` items. An optional property that may be null
 * is null ("not given").
 * @param {Object|null} schema
 * @param {Object} components
 * @param {{now?: Date}} [options] `now` for date-times
 * @returns {*}
 */
export function skeleton(schema, components, options = {}) {
  return sample(schema, components, options.now ?? new Date(), 0);
}

function sample(schema, components, now, depth) {
  const resolved = resolve(schema, components);
  if (!resolved || depth > 6) return null;
  if ("default" in resolved) return resolved.default;
  if ("const" in resolved) return resolved.const;
  if (Array.isArray(resolved.examples) && resolved.examples.length) return resolved.examples[0];
  if ("example" in resolved) return resolved.example;
  if (Array.isArray(resolved.enum) && resolved.enum.length) return resolved.enum[0];
  const variants = resolved.oneOf ?? resolved.anyOf;
  if (Array.isArray(variants) && variants.length) return sample(variants.find((v) => resolve(v, components)?.type !== "null") ?? variants[0], components, now, depth + 1);
  switch (mainType(resolved)) {
    case "object": {
      const value = {};
      const required = new Set(resolved.required ?? []);
      for (const [property, propertySchema] of Object.entries(resolved.properties ?? {})) {
        if (propertySchema.readOnly) continue;
        value[property] = !required.has(property) && nullable(propertySchema, components)
          ? null // optional and nullable: null says "not given" (an empty `fields` would select nothing)
          : sample(propertySchema, components, now, depth + 1);
      }
      return value;
    }
    case "array": {
      const count = Math.max(0, resolved.minItems ?? 0);
      return Array.from({ length: count }, () => sample(resolved.items, components, now, depth + 1));
    }
    case "string":
      return sampleString(resolved, now);
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

/** Whether `schema` (unresolved) admits null and has no default of its own. */
export function nullable(schema, components) {
  if (!schema || typeof schema !== "object" || "default" in schema) return false;
  const type = schema.type;
  if (type === "null" || (Array.isArray(type) && type.includes("null"))) return true;
  const variants = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(variants)) return variants.some((variant) => nullable(variant, components));
  const target = schema.$ref ? resolve(schema, components) : null;
  return target ? nullable(target, components) : false;
}

function sampleString(schema, now) {
  const format = FORMAT_SAMPLES[schema.format];
  if (format) return format(now);
  if (typeof schema["x-strftime"] === "string") return strftime(schema["x-strftime"], now);
  const iso = now.toISOString();
  if (schema.pattern) return matchingString(schema.pattern, [EXAMPLE_TEXT, iso, iso.slice(0, 19), iso.slice(0, 10)]);
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? Infinity;
  return EXAMPLE_TEXT.padEnd(min, "x").slice(0, max);
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

/** Which topics each built-in that names a channel works on. */
const CHANNEL_BUILTINS = {
  __subscribe__: (topic) => topic.client_subscribe,
  __unsubscribe__: (topic) => topic.client_subscribe,
  __publish__: (topic) => topic.client_publish,
  __history__: (topic) => topic.client_subscribe && Boolean(topic.history),
  __presence__: (topic) => topic.client_subscribe && Boolean(topic.presence),
};

/**
 * The topics of `contract` a built-in works on: all of them for one that names no channel.
 * @param {string} name a built-in action, e.g. "__history__"
 * @param {{topics?: Array}} contract the `__schema__` document
 * @returns {Array}
 */
export function topicsFor(name, contract) {
  const fits = CHANNEL_BUILTINS[name];
  const topics = contract.topics ?? [];
  return fits ? topics.filter(fits) : topics;
}

/**
 * Whether the explorer offers built-in `name`: a channel built-in only when some topic
 * allows it (`__history__` needs a topic that keeps history, `__publish__` one that
 * clients may publish to).
 * @param {string} name
 * @param {{topics?: Array}} contract
 * @returns {boolean}
 */
export function offered(name, contract) {
  return !(name in CHANNEL_BUILTINS) || topicsFor(name, contract).length > 0;
}

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
  if (!(act.name in CHANNEL_BUILTINS) || !value || typeof value !== "object") return value;
  const topic = topicsFor(act.name, contract)[0];
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
 * A concrete channel of a topic pattern, each parameter "example": "chat.{room}" -> "chat.example".
 * @param {string} pattern
 * @returns {string}
 */
export function defaultChannel(pattern) {
  return pattern.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, EXAMPLE_TEXT);
}

/** What a topic parameter may hold (drizzle_gateway.contract.topics.PARAM_VALUE). */
const PARAM_VALUE = "[A-Za-z0-9_\\-:@]+";

/**
 * The params of `channel` if it is a concrete channel of topic `pattern`, else null:
 * ("chat.{room}", "chat.lobby") -> {room: "lobby"}.
 * @param {string} pattern
 * @param {string} channel
 * @returns {Object<string, string>|null}
 */
export function channelParams(pattern, channel) {
  const parts = pattern.split(/\{([A-Za-z_][A-Za-z0-9_]*)\}/);
  const source = parts.map((part, i) => (i % 2 ? `(?<${part}>${PARAM_VALUE})` : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  const found = new RegExp(`^${source.join("")}$`).exec(channel);
  return found ? { ...found.groups } : null;
}

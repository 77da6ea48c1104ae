/**
 * JSON Schema as the TypeScript codegen (`drizzle-gateway codegen ts`, `/_explorer/api.ts`)
 * names it, for the explorer's schema view: `ChatMessage` on the dump side (replies,
 * events), `NewMessageInput` on the load side (requests), `number` for integers,
 * `Array<T>`, `"a" | "b"` for an enum, `?` for an optional input field; and the
 * constraints beside each type in a few words ("1–40 chars", "date-time").
 *
 * Pure, unit-tested under node (tests/js/explorer-types.test.mjs).
 * @module explorer-types
 */

const REF = "#/components/schemas/";
const INPUT_SUFFIX = "-Input";
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** Names the generated module uses itself: a component named so gets a trailing "_" there. */
const HELPERS = new Set(["Api", "Select", "Selected", "TopicHandle", "PublishableTopic", "DrizzleLike", "EventMeta",
  "SubscriptionLike", "CallOptions", "ErrorCode", "AnyErrorCode", "ChannelReply", "typed"]);

/**
 * Patterns `__schema__` writes for marshmallow fields that have no JSON Schema format
 * (drizzle_gateway.contract.introspection): shown by name, not as a regular expression.
 */
export const KNOWN_PATTERNS = Object.freeze({
  "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?)?$":
    "ISO 8601 date-time (offset optional)",
});

/**
 * The TypeScript name of component `name` on `side`: "Todo-Input" on the load side is "TodoInput".
 * @param {string} name a key of `components.schemas`
 * @param {"in"|"out"} side
 * @returns {string}
 */
export function typeName(name, side) {
  let ident = name.endsWith(INPUT_SUFFIX) ? name.slice(0, -INPUT_SUFFIX.length) : name;
  ident = ident.replace(/[^A-Za-z0-9_$]/g, "_");
  if (!IDENTIFIER.test(ident)) ident = `_${ident}`;
  if (HELPERS.has(ident)) ident += "_";
  return ident + (side === "in" ? "Input" : "");
}

function literal(value) {
  return JSON.stringify(value);
}

function kinds(node) {
  if (node.type !== undefined) return Array.isArray(node.type) ? node.type : [node.type];
  if (node.properties) return ["object"];
  if (node.items || node.prefixItems) return ["array"];
  return null;
}

/**
 * The TypeScript type of `schema` on `side`, components by name (one line).
 * @param {*} schema
 * @param {"in"|"out"} side
 * @returns {string}
 */
export function typeText(schema, side) {
  if (schema === true || schema === undefined || schema === null) return "unknown";
  if (schema === false) return "never";
  if (typeof schema !== "object" || Object.keys(schema).every((key) => key === "description")) return "unknown";
  if (schema.$ref) return typeName(schema.$ref.slice(REF.length), side);
  if ("const" in schema) return literal(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map(literal).join(" | ") || "never";
  for (const [keyword, joiner] of [["anyOf", " | "], ["oneOf", " | "], ["allOf", " & "]]) {
    if (Array.isArray(schema[keyword])) {
      const parts = schema[keyword].map((sub) => typeText(sub, side));
      return parts.length === 1 ? parts[0] : parts.map((part) => (part.includes(" ") ? `(${part})` : part)).join(joiner);
    }
  }
  const found = kinds(schema);
  if (!found) return "unknown";
  return found.map((kind) => kindText(kind, schema, side)).join(" | ");
}

function kindText(kind, schema, side) {
  if (kind === "integer" || kind === "number") return "number";
  if (kind === "string" || kind === "boolean" || kind === "null") return kind;
  if (kind === "array") {
    if (Array.isArray(schema.prefixItems)) return `[${schema.prefixItems.map((item) => typeText(item, side)).join(", ")}]`;
    return `Array<${typeText(schema.items ?? true, side)}>`;
  }
  if (kind === "object") {
    if (schema.properties && Object.keys(schema.properties).length) return "{ … }";
    const extra = schema.additionalProperties;
    return `{ [key: string]: ${extra && typeof extra === "object" ? typeText(extra, side) : "unknown"} }`;
  }
  return "unknown";
}

function range(low, high, unit) {
  if (low !== undefined && high !== undefined) return low === high ? `${low} ${unit}` : `${low}–${high} ${unit}`;
  if (low !== undefined) return `≥ ${low} ${unit}`;
  return `≤ ${high} ${unit}`;
}

/**
 * The constraints of `schema` (not following `$ref`) in a few words each.
 * @param {*} schema
 * @returns {string[]}
 */
export function notes(schema) {
  if (!schema || typeof schema !== "object") return [];
  const said = [];
  if (schema.format) said.push(schema.format);
  if (typeof schema["x-strftime"] === "string") said.push(`format ${schema["x-strftime"]}`);
  if (typeof schema.pattern === "string") said.push(KNOWN_PATTERNS[schema.pattern] ?? `matches ${schema.pattern}`);
  if (schema.minLength !== undefined || schema.maxLength !== undefined) {
    said.push(range(schema.minLength, schema.maxLength, "chars"));
  }
  if (schema.minItems !== undefined || schema.maxItems !== undefined) {
    said.push(range(schema.minItems, schema.maxItems, "items"));
  }
  if (typeof schema.minimum === "number") said.push(`≥ ${schema.minimum}`);
  if (typeof schema.exclusiveMinimum === "number") said.push(`> ${schema.exclusiveMinimum}`);
  if (typeof schema.maximum === "number") said.push(`≤ ${schema.maximum}`);
  if (typeof schema.exclusiveMaximum === "number") said.push(`< ${schema.exclusiveMaximum}`);
  if (typeof schema.multipleOf === "number") said.push(`multiple of ${schema.multipleOf}`);
  if ("default" in schema) said.push(`default ${literal(schema.default)}`);
  return said;
}

/**
 * @typedef {Object} Field
 * @property {string} name
 * @property {boolean} optional shown with "?" (load side: not required)
 * @property {string} type its TypeScript type
 * @property {string[]} notes its constraints
 * @property {string} [description]
 * @property {{component: string|null, node: Object}|null} shape the object it nests (`fieldsOf(node)` unfolds it)
 */

/**
 * @typedef {Object} Shape
 * @property {string} type the TypeScript type of the whole ("NewMessageInput", "Array<ChatMessage>")
 * @property {string|null} component the component it unfolds, if any
 * @property {Field[]} fields
 */

/**
 * What `schema` holds on `side`, to show as a tree: its type and, when it nests an object
 * (itself, through `$ref`, as array items or as one branch of a nullable union), that
 * object's fields. A field's own nesting is unfolded only when asked (`fieldsOf`), so a
 * schema that nests itself stays finite.
 * @param {*} schema
 * @param {"in"|"out"} side
 * @param {Object} components
 * @returns {Shape}
 */
export function shape(schema, side, components) {
  const target = objectTarget(schema, components);
  return {
    type: typeText(schema, side),
    component: target?.component ?? null,
    fields: target ? fieldsOf(target.node, side, components) : [],
  };
}

/** The object `schema` leads to, through a `$ref`, array items or a nullable union; or null. */
function objectTarget(schema, components, hops = 0) {
  if (!schema || typeof schema !== "object" || hops > 8) return null;
  if (schema.$ref) {
    const name = schema.$ref.slice(REF.length);
    const node = components?.schemas?.[name];
    if (!node) return null;
    if (node.properties) return { component: name, node };
    return objectTarget(node, components, hops + 1);
  }
  if (schema.properties) return { component: null, node: schema };
  const found = kinds(schema);
  if (found?.includes("array") && schema.items) return objectTarget(schema.items, components, hops + 1);
  const variants = (schema.anyOf ?? schema.oneOf ?? []).filter((sub) => sub?.type !== "null");
  return variants.length === 1 ? objectTarget(variants[0], components, hops + 1) : null;
}

/**
 * The fields of an object schema on `side`, as the codegen types them: dump-only fields
 * are left out of the load side, load-only fields out of the dump side.
 * @param {Object} node an object schema (with `properties`)
 * @param {"in"|"out"} side
 * @param {Object} components
 * @returns {Field[]}
 */
export function fieldsOf(node, side, components) {
  const required = new Set(node.required ?? []);
  const fields = [];
  for (const [name, property] of Object.entries(node.properties ?? {})) {
    if (property && typeof property === "object" && property[side === "out" ? "writeOnly" : "readOnly"]) continue;
    const nested = objectTarget(property, components);
    fields.push({
      name,
      optional: side === "in" && !required.has(name),
      type: typeText(property, side),
      notes: notes(property),
      description: property?.description,
      shape: nested ? { type: typeText(property, side), component: nested.component, node: nested.node } : null,
    });
  }
  return fields;
}

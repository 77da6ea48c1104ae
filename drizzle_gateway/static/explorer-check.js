/**
 * Checks a JSON value against the JSON Schema `__schema__` gives, before the explorer
 * sends it: the subset the contract uses (`$ref` into components, `type`, `enum`,
 * `const`, `required`, `properties`, `additionalProperties`, `minimum`/`maximum` and
 * their exclusive forms, `multipleOf`, `minLength`/`maxLength`, `pattern`, `items`,
 * `prefixItems`, `minItems`/`maxItems`, `anyOf`/`oneOf`/`allOf`). Formats are left to
 * the server, which stays the judge: the check only spares a round trip.
 *
 * Pure, unit-tested under node (tests/js/explorer-check.test.mjs).
 * @module explorer-check
 */

import { resolve } from "./explorer-schema.js";

/**
 * @typedef {Object} Problem
 * @property {string} path where, as dotted keys and [indexes] ("" for the value itself)
 * @property {string} message what is wrong
 */

const MAX_DEPTH = 32;

/**
 * The problems of `value` against `schema`; empty when it passes.
 * @param {*} value
 * @param {Object|boolean|null|undefined} schema
 * @param {Object} components the `components` of `__schema__`
 * @returns {Problem[]}
 */
export function check(value, schema, components) {
  const problems = [];
  visit(value, schema, components, "", problems, 0);
  return problems;
}

function jsonType(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value; // string, boolean, object
}

function typeMatches(value, type) {
  const actual = jsonType(value);
  return actual === type || (type === "number" && actual === "integer");
}

function join(path, key) {
  if (typeof key === "number") return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/** Unicode code points, as Python (and so marshmallow's Length) counts characters. */
function length(text) {
  return [...text].length;
}

function compiled(pattern) {
  for (const flags of ["u", ""]) {
    try {
      return new RegExp(pattern, flags);
    } catch {
      // a construct JavaScript does not know: the server checks it
    }
  }
  return null;
}

function visit(value, schema, components, path, problems, depth) {
  if (schema === true || schema === undefined || schema === null || depth > MAX_DEPTH) return;
  if (schema === false) {
    problems.push({ path, message: "no value is allowed here" });
    return;
  }
  if (schema.$ref) {
    const target = resolve(schema, components);
    if (target) visit(value, target, components, path, problems, depth + 1);
    return;
  }
  const add = (message) => problems.push({ path, message });

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((type) => typeMatches(value, type))) {
      add(`expected ${types.join(" or ")}, got ${jsonType(value)}`);
      return;
    }
  }
  if ("const" in schema && JSON.stringify(value) !== JSON.stringify(schema.const)) {
    add(`must be ${JSON.stringify(schema.const)}`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => JSON.stringify(option) === JSON.stringify(value))) {
    add(`must be one of ${schema.enum.map((option) => JSON.stringify(option)).join(", ")}`);
  }
  for (const sub of schema.allOf ?? []) visit(value, sub, components, path, problems, depth + 1);
  for (const keyword of ["anyOf", "oneOf"]) {
    const variants = schema[keyword];
    if (!Array.isArray(variants) || !variants.length) continue;
    const tried = variants.map((variant) => check1(value, variant, components, path, depth));
    if (!tried.some((found) => found.length === 0)) {
      // one variant: its own problems say most; several: the closest one's
      const closest = tried.reduce((best, found) => (found.length < best.length ? found : best));
      if (variants.length === 1) problems.push(...closest);
      else add(`matches none of its ${variants.length} variants (closest: ${closest.map(say).join("; ")})`);
    }
  }

  switch (jsonType(value)) {
    case "string":
      checkString(value, schema, add);
      break;
    case "integer":
    case "number":
      checkNumber(value, schema, add);
      break;
    case "array":
      checkArray(value, schema, components, path, problems, depth, add);
      break;
    case "object":
      checkObject(value, schema, components, path, problems, depth, add);
      break;
    default:
      break;
  }
}

function check1(value, schema, components, path, depth) {
  const problems = [];
  visit(value, schema, components, path, problems, depth + 1);
  return problems;
}

/** A problem as one line: "room: must match ...". */
export function say(problem) {
  return problem.path ? `${problem.path}: ${problem.message}` : problem.message;
}

function checkString(value, schema, add) {
  if (typeof schema.minLength === "number" && length(value) < schema.minLength) {
    add(`at least ${schema.minLength} character${schema.minLength === 1 ? "" : "s"}`);
  }
  if (typeof schema.maxLength === "number" && length(value) > schema.maxLength) {
    add(`at most ${schema.maxLength} character${schema.maxLength === 1 ? "" : "s"}`);
  }
  if (typeof schema.pattern === "string") {
    const regex = compiled(schema.pattern);
    if (regex && !regex.test(value)) add(`must match ${schema.pattern}`);
  }
}

function checkNumber(value, schema, add) {
  if (typeof schema.minimum === "number" && value < schema.minimum) add(`must be ≥ ${schema.minimum}`);
  if (typeof schema.maximum === "number" && value > schema.maximum) add(`must be ≤ ${schema.maximum}`);
  if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) {
    add(`must be > ${schema.exclusiveMinimum}`);
  }
  if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) {
    add(`must be < ${schema.exclusiveMaximum}`);
  }
  if (typeof schema.multipleOf === "number" && schema.multipleOf > 0) {
    const ratio = value / schema.multipleOf;
    if (Math.abs(ratio - Math.round(ratio)) > 1e-9) add(`must be a multiple of ${schema.multipleOf}`);
  }
}

function checkArray(value, schema, components, path, problems, depth, add) {
  if (typeof schema.minItems === "number" && value.length < schema.minItems) add(`at least ${schema.minItems} item(s)`);
  if (typeof schema.maxItems === "number" && value.length > schema.maxItems) add(`at most ${schema.maxItems} item(s)`);
  const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
  value.forEach((item, index) => {
    const itemSchema = index < prefix.length ? prefix[index] : schema.items;
    visit(item, itemSchema, components, join(path, index), problems, depth + 1);
  });
}

function checkObject(value, schema, components, path, problems, depth, add) {
  const properties = schema.properties ?? {};
  for (const name of schema.required ?? []) {
    if (!(name in value)) problems.push({ path: join(path, name), message: "required" });
  }
  for (const [name, item] of Object.entries(value)) {
    if (name in properties) {
      visit(item, properties[name], components, join(path, name), problems, depth + 1);
    } else if (schema.additionalProperties === false) {
      problems.push({ path: join(path, name), message: "unknown field" });
    } else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
      visit(item, schema.additionalProperties, components, join(path, name), problems, depth + 1);
    }
  }
  if (typeof schema.minProperties === "number" && Object.keys(value).length < schema.minProperties) {
    add(`at least ${schema.minProperties} field(s)`);
  }
}

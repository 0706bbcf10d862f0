/**
 * CRD structural-schema handling as the API server does it: prune unknown fields, apply defaults, validate.
 * OpenAPI v3 schemas are close enough to JSON Schema for ajv once the `x-kubernetes-*` and `nullable`
 * keywords are tolerated.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { StatusCause } from "./errors.ts";

type Obj = Record<string, unknown>;
type Schema = Record<string, unknown>;

// ajv-formats ships CJS with a default export; under NodeNext its type is the module namespace.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Drops fields the schema does not declare (the API server's pruning), except under metadata at the root.
 * Returns the paths it dropped.
 */
export function prune(
  value: unknown,
  schema: Schema | undefined,
  root = true,
  path = "",
  removed: string[] = [],
): string[] {
  if (!schema || schema["x-kubernetes-preserve-unknown-fields"] === true) return removed;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries())
      prune(item, schema.items as Schema | undefined, false, `${path}[${i}]`, removed);
    return removed;
  }
  if (!isObject(value)) return removed;
  const props = schema.properties as Record<string, Schema> | undefined;
  const additional = schema.additionalProperties;
  for (const key of Object.keys(value)) {
    if (root && (key === "metadata" || key === "apiVersion" || key === "kind")) continue;
    const sub = props?.[key];
    const at = path ? `${path}.${key}` : key;
    if (sub) prune(value[key], sub, false, at, removed);
    else if (isObject(additional)) prune(value[key], additional as Schema, false, at, removed);
    else if (props && additional !== true) {
      delete value[key];
      removed.push(at);
    }
  }
  return removed;
}

function toJsonSchema(schema: Schema): Schema {
  // metadata is validated by the API machinery, not the CRD schema.
  const props = { ...((schema.properties as Record<string, Schema>) ?? {}) };
  props.metadata = { type: "object" };
  return { ...schema, properties: props };
}

function fieldPath(instancePath: string): string {
  return instancePath
    .split("/")
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join("");
}

function cause(e: ErrorObject, obj: unknown): StatusCause {
  const base = fieldPath(e.instancePath);
  const at = (field: string) => (base ? `${base}.${field}` : field);
  const value = e.instancePath
    .split("/")
    .filter(Boolean)
    .reduce<unknown>((cur, p) => (isObject(cur) || Array.isArray(cur) ? (cur as Obj)[p] : undefined), obj);
  switch (e.keyword) {
    case "required": {
      const field = at(String((e.params as { missingProperty: string }).missingProperty));
      return { reason: "FieldValueRequired", message: "Required value", field };
    }
    case "enum": {
      const allowed = ((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v));
      return {
        reason: "FieldValueNotSupported",
        message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.join(", ")}`,
        field: base,
      };
    }
    case "type":
      return {
        reason: "FieldValueTypeInvalid",
        message: `Invalid value: "${typeof value}": ${base} in body must be of type ${(e.params as { type: string }).type}: "${typeof value}"`,
        field: base,
      };
    default:
      return {
        reason: "FieldValueInvalid",
        message: `Invalid value: ${JSON.stringify(value)}: ${base} in body ${e.message ?? "is invalid"}`,
        field: base,
      };
  }
}

/** Prunes and defaults `obj` in place; returns the field errors (empty when valid) and the pruned paths. */
export type Validator = (obj: Obj) => { causes: StatusCause[]; pruned: string[] };

export function makeValidator(schema: Schema): Validator {
  const ajv = new Ajv({ strict: false, useDefaults: true, allErrors: true });
  addFormats(ajv);
  const validate: ValidateFunction = ajv.compile(toJsonSchema(schema));
  return (obj) => {
    const pruned = prune(obj, schema);
    if (validate(obj)) return { causes: [], pruned };
    return { causes: (validate.errors ?? []).map((e) => cause(e, obj)), pruned };
  };
}

/** metav1.Status errors, shaped like the API server's (apimachinery/pkg/api/errors). */
import type { ResourceType } from "./resources.ts";
import { qualifiedName } from "./resources.ts";

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: StatusCause[] },
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

export function notFound(rt: ResourceType, name: string): ApiError {
  return new ApiError(404, "NotFound", `${qualifiedName(rt)} "${name}" not found`, {
    name,
    group: rt.group,
    kind: rt.plural,
  });
}

export function alreadyExists(rt: ResourceType, name: string): ApiError {
  return new ApiError(409, "AlreadyExists", `${qualifiedName(rt)} "${name}" already exists`, {
    name,
    group: rt.group,
    kind: rt.plural,
  });
}

export function conflict(rt: ResourceType, name: string): ApiError {
  return new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualifiedName(rt)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: rt.group, kind: rt.plural },
  );
}

export function invalid(rt: ResourceType, name: string, causes: StatusCause[]): ApiError {
  const gk = rt.group ? `${rt.kind}.${rt.group}` : rt.kind;
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const summary = list.length === 1 ? list[0] : `[${list.join(", ")}]`;
  return new ApiError(422, "Invalid", `${gk} "${name}" is invalid: ${summary}`, {
    name,
    group: rt.group,
    kind: rt.kind,
    causes,
  });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

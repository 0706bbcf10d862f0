/**
 * The runner redacts with the one implementation in core/redact.ts (patterns in core/secret-patterns.ts);
 * this re-export only keeps the runner's imports short. Nothing is implemented here.
 */
export * from "../../../core/redact.ts";

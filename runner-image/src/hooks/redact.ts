/** The runner redacts with the shared implementation in core (the pattern job uses it too). */
export * from "../../../core/redact.ts";

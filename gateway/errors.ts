/**
 * A dependency the gateway hands work to (NATS, the forge API, the ClickUp API) cannot take it
 * right now. The one `onError` handler answers 503 so the sender redelivers later.
 *
 * @example
 * throw new Unavailable("nats", "not connected");
 */
export class Unavailable extends Error {
  override readonly name = "Unavailable";
  constructor(
    readonly dependency: "nats" | "forge" | "clickup",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} unavailable: ${message}`, options);
  }
}

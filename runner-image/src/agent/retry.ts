import { APIConnectionError, APIError } from "@anthropic-ai/sdk";

export interface RetryOptions {
  maxRetries: number;
  baseMs: number;
  maxMs?: number;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (info: { attempt: number; delayMs: number; status?: number; message: string }) => void;
}

/** Raised when the model API kept failing: the stage ends with a clear failure result. */
export class ModelUnavailableError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * The egress gateway's budget refusal: HTTP 402 `{type:"error",error:{type:"budget_exhausted"}}`. The run's
 * budget is spent (as the gateway meters it): never retried, reported as BudgetExhausted.
 */
export function isBudgetExhausted(err: unknown): boolean {
  if (!(err instanceof APIError) || err.status !== 402) return false;
  const body = err.error as { type?: unknown; error?: { type?: unknown } } | undefined;
  return body?.error?.type === "budget_exhausted" || body?.type === "budget_exhausted";
}

/** 408, 409, 429, 5xx and 529 (overloaded), and connection failures, are worth another try. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof APIConnectionError) return true;
  if (err instanceof APIError && typeof err.status === "number") {
    return err.status === 408 || err.status === 409 || err.status === 429 || err.status >= 500;
  }
  return false;
}

/** The server's hint, in ms: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date. */
function retryAfterMs(err: unknown): number | undefined {
  const headers = err instanceof APIError ? err.headers : undefined;
  if (!headers) return undefined;
  const ms = Number(headers.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms >= 0 && headers.get("retry-after-ms") !== null) return ms;
  const after = headers.get("retry-after");
  if (after === null) return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(after);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/**
 * Calls `fn` until it succeeds, retrying transient model API errors with exponential backoff and
 * full jitter (or the server's retry-after, capped). Non-retryable errors pass through at once.
 */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const maxMs = opts.maxMs ?? 60_000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err)) throw err;
      const status = err instanceof APIError ? err.status : undefined;
      const message = err instanceof Error ? err.message : String(err);
      if (attempt >= opts.maxRetries)
        throw new ModelUnavailableError(
          `model API failed after ${attempt + 1} attempts: ${message}`,
          attempt + 1,
          status,
        );
      const hinted = retryAfterMs(err);
      const delayMs = Math.min(maxMs, hinted ?? Math.random() * opts.baseMs * 2 ** attempt);
      opts.onRetry?.({ attempt: attempt + 1, delayMs, status, message });
      await sleep(delayMs);
    }
  }
}

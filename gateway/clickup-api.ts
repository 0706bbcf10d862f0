import { z } from "zod";
import { Unavailable } from "./errors.ts";

const CustomField = z.object({
  id: z.string(),
  name: z.string(),
  type: z.string(),
  value: z.unknown().optional(),
  type_config: z
    .object({
      options: z
        .array(z.object({ id: z.string(), name: z.string().optional(), orderindex: z.number().optional() }))
        .optional(),
    })
    .loose()
    .optional(),
});
export type ClickUpCustomField = z.infer<typeof CustomField>;

/** The parts of ClickUp's `GET /task/{id}` the gateway uses. */
export const ClickUpTask = z.object({
  id: z.string().min(1),
  name: z.string(),
  description: z.string().nullish(),
  text_content: z.string().nullish(),
  url: z.string().default(""),
  list: z.object({ id: z.string() }).nullish(),
  creator: z.object({ username: z.string().nullish() }).nullish(),
  tags: z.array(z.object({ name: z.string() })).default([]),
  custom_fields: z.array(CustomField).default([]),
});
export type ClickUpTask = z.infer<typeof ClickUpTask>;

export interface ClickUpClient {
  /** The task, or undefined when ClickUp says it does not exist. Throws `Unavailable` otherwise. */
  getTask(taskId: string): Promise<ClickUpTask | undefined>;
}

export interface ClickUpClientOptions {
  /** `https://api.clickup.com/api/v2` */
  apiUrl: string;
  token: string;
  /** ClickUp waits 7 s for the webhook answer; the lookup must leave room for the publish. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * ClickUp REST v2 client (personal or app token in `Authorization`, no "Bearer").
 *
 * @example
 * const clickup = clickUpClient({ apiUrl: "https://api.clickup.com/api/v2", token });
 * const task = await clickup.getTask("86abc");
 */
export function clickUpClient({
  apiUrl,
  token,
  timeoutMs = 4_000,
  fetch: fetchImpl = fetch,
}: ClickUpClientOptions): ClickUpClient {
  const base = apiUrl.replace(/\/+$/, "");
  return {
    async getTask(taskId) {
      let res: Response;
      try {
        res = await fetchImpl(`${base}/task/${encodeURIComponent(taskId)}`, {
          headers: { Authorization: token, Accept: "application/json" },
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new Unavailable("clickup", (err as Error).message, { cause: err });
      }
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Unavailable("clickup", `GET /task/${taskId} answered ${res.status}`);
      const parsed = ClickUpTask.safeParse(await res.json().catch(() => undefined));
      if (!parsed.success) throw new Unavailable("clickup", `GET /task/${taskId}: unexpected task shape`);
      return parsed.data;
    },
  };
}

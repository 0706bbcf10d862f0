import { Hono } from "hono";
import { z } from "zod";
import { StageName } from "../core/result.ts";
import { adminAuthorized } from "./auth.ts";
import { forgeTokenContext } from "./forge.ts";
import type { EgressDeps } from "./http.ts";
import { heldUsd, LedgerUnavailable, type RunEntry } from "./ledger.ts";

/**
 * The admin API, on its own port (the chart's NetworkPolicy opens it to the operator only), behind
 * Bearer ADMIN_TOKEN:
 *
 * - `PUT /admin/v1/runs/:namespace/:name/stages/:stage` reserves the run's budget for a stage attempt
 *   (body: uid, budgetUsd, attempt, repo, branch, forgeToken?) before its Job starts; tokens of other
 *   attempts stop working.
 * - `DELETE /admin/v1/runs/:namespace/:name/stages/:stage[?attempt=n]` ends the attempt.
 * - `GET /admin/v1/runs/:namespace/:name` reads budget, spend, holds and per-stage usage and refusals.
 * - `DELETE /admin/v1/runs/:namespace/:name` forgets the run.
 *
 * Forge tokens go in and are never given back out.
 */

const Name = z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/);
const Namespace = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);

export const ReservationBody = z.object({
  uid: z.string().min(1).max(128),
  budgetUsd: z.number().nonnegative().finite(),
  attempt: z.number().int().positive(),
  repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/),
  branch: z.string().startsWith("agent/").max(255),
  forgeToken: z.string().min(1).max(4096).optional(),
});
export type ReservationBody = z.infer<typeof ReservationBody>;

/** A run's entry as the admin API shows it: totals, and no forge token. */
export function view(run: RunEntry) {
  const held = heldUsd(run);
  return {
    namespace: run.namespace,
    name: run.name,
    uid: run.uid,
    budgetUsd: run.budgetUsd,
    spentUsd: run.spentUsd,
    heldUsd: held,
    remainingUsd: Math.max(0, run.budgetUsd - run.spentUsd - held),
    refused: Object.values(run.stages).reduce((n, s) => n + (s?.refused ?? 0), 0),
    stages: Object.fromEntries(
      Object.entries(run.stages).map(([stage, s]) => {
        const { forgeToken, ...rest } = s ?? {};
        return [stage, { ...rest, forgeToken: forgeToken !== undefined }];
      }),
    ),
    updatedAt: run.updatedAt,
  };
}

/** /metrics, /healthz and /readyz, on the metrics port. */
export function metricsApp(deps: EgressDeps, ready: () => boolean): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  app.get("/readyz", (c) => (ready() ? c.text("ready") : c.text("not ready", 503)));
  app.get("/metrics", async (c) =>
    c.body(await deps.metrics.registry.metrics(), 200, { "content-type": deps.metrics.registry.contentType }),
  );
  return app;
}

export function adminApp(deps: EgressDeps): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));

  const admin = new Hono();
  admin.use("*", async (c, next) => {
    if (!adminAuthorized(c.req.header("authorization"), deps.config.adminToken)) {
      deps.logger.warn({ event: "admin_unauthorized", path: c.req.path }, "admin request refused");
      return c.json({ error: "unauthorized" }, 401);
    }
    await next();
  });
  const names = (c: { req: { param(k: string): string | undefined } }) => {
    const ns = Namespace.safeParse(c.req.param("namespace"));
    const name = Name.safeParse(c.req.param("name"));
    return ns.success && name.success ? { namespace: ns.data, name: name.data } : undefined;
  };

  admin.put("/runs/:namespace/:name/stages/:stage", async (c) => {
    const id = names(c);
    const stage = StageName.safeParse(c.req.param("stage"));
    if (!id || !stage.success) return c.json({ error: "bad namespace, name or stage" }, 400);
    let body: ReservationBody;
    try {
      body = ReservationBody.parse(await c.req.json());
    } catch (err) {
      return c.json({ error: err instanceof z.ZodError ? z.prettifyError(err) : "body is not JSON" }, 400);
    }
    const { forgeToken, ...rest } = body;
    const sealed = forgeToken
      ? deps.sealer.seal(
          forgeToken,
          forgeTokenContext({ run: { ...id, uid: body.uid }, stage: stage.data, attempt: body.attempt }),
        )
      : undefined;
    const run = await deps.ledger.reserve(id.namespace, id.name, {
      ...rest,
      stage: stage.data,
      ...(sealed ? { forgeToken: sealed } : {}),
    });
    deps.logger.info(
      {
        event: "reserved",
        run: `${id.namespace}/${id.name}`,
        stage: stage.data,
        attempt: body.attempt,
        budgetUsd: body.budgetUsd,
        spentUsd: run.spentUsd,
        hasForgeToken: forgeToken !== undefined,
      },
      "budget reserved for a stage attempt",
    );
    return c.json(view(run));
  });

  admin.delete("/runs/:namespace/:name/stages/:stage", async (c) => {
    const id = names(c);
    const stage = StageName.safeParse(c.req.param("stage"));
    if (!id || !stage.success) return c.json({ error: "bad namespace, name or stage" }, 400);
    const attemptParam = c.req.query("attempt");
    const attempt = attemptParam === undefined ? undefined : Number(attemptParam);
    if (attempt !== undefined && !(Number.isInteger(attempt) && attempt > 0)) {
      return c.json({ error: "bad attempt" }, 400);
    }
    const run = await deps.ledger.end(id.namespace, id.name, stage.data, attempt);
    if (!run) return c.json({ error: "no such run" }, 404);
    deps.logger.info({ event: "ended", run: `${id.namespace}/${id.name}`, stage: stage.data }, "stage attempt ended");
    return c.json(view(run));
  });

  admin.get("/runs/:namespace/:name", async (c) => {
    const id = names(c);
    if (!id) return c.json({ error: "bad namespace or name" }, 400);
    const run = await deps.ledger.read(id.namespace, id.name);
    return run ? c.json(view(run)) : c.json({ error: "no such run" }, 404);
  });

  admin.delete("/runs/:namespace/:name", async (c) => {
    const id = names(c);
    if (!id) return c.json({ error: "bad namespace or name" }, 400);
    return (await deps.ledger.remove(id.namespace, id.name))
      ? c.body(null, 204)
      : c.json({ error: "no such run" }, 404);
  });

  app.route("/admin/v1", admin);
  app.onError((err, c) => {
    if (err instanceof LedgerUnavailable) return c.json({ error: err.message }, 503);
    deps.logger.error({ event: "error", err: String(err?.stack ?? err), path: c.req.path }, "admin request failed");
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}

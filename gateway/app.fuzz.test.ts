import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  commentPayload,
  FakeClickUp,
  FakePublisher,
  issuesPayload,
  memoryLogger,
  reviewPayload,
} from "../test/gateway/fakes.ts";
import { createApp } from "./app.ts";

// Property tests: thousands of mutated requests. Whatever arrives, the gateway never answers 5xx
// (its dependencies are up here), and it publishes only what carried a valid signature or token
// for the exact bytes it received.
const GH = "fuzz-github-secret";
const CU = "fuzz-clickup-secret";
const TOKEN = "fuzz-dispatch-token";

const hmacHex = (secret: string, body: Uint8Array) => createHmac("sha256", secret).update(body).digest("hex");

function setup() {
  const publisher = new FakePublisher();
  const clickup = new FakeClickUp({ "86abc": { name: "T", description: "B", list: { id: "901" } } });
  const app = createApp({
    publisher,
    clickup,
    logger: memoryLogger("silent").logger,
    config: {
      github: { webhookSecret: GH, triggerLabel: "ai-agent" },
      clickup: {
        webhookSecret: CU,
        triggerTag: "ai-agent",
        repoMap: { "901": "acme/widgets" },
        repoField: "repository",
      },
      dispatch: { token: TOKEN },
      bodyLimitBytes: 16 * 1024,
    },
  });
  return { app, publisher };
}

type Route = "github" | "clickup" | "dispatch";
interface Req {
  route: Route;
  headers: Record<string, string>;
  body: Uint8Array;
}

const enc = new TextEncoder();
const seeds: Record<Route, (string | object)[]> = {
  github: [
    issuesPayload(),
    issuesPayload({ action: "closed" }),
    commentPayload({ body: "ok", labels: ["needs-clarification"] }),
    commentPayload({ body: "/agentfactory fix", pullRequest: true, number: 77 }),
    reviewPayload({ body: "/agentfactory stop", branch: "agent/1-a" }),
  ],
  clickup: [
    {
      event: "taskTagUpdated",
      task_id: "86abc",
      history_items: [{ id: "h1", field: "tag", after: [{ name: "ai-agent" }] }],
    },
  ],
  dispatch: [{ repo: "acme/widgets", title: "T", body: "B<!--x-->" }],
};
const events = ["issues", "issue_comment", "pull_request_review", "issue_comment", "issue_comment"];

function signed(route: Route, body: Uint8Array, index: number): Req {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (route === "github") {
    headers["x-github-event"] = events[index % events.length] as string;
    headers["x-github-delivery"] = `d-${index}`;
    headers["x-hub-signature-256"] = `sha256=${hmacHex(GH, body)}`;
  } else if (route === "clickup") {
    headers["x-signature"] = hmacHex(CU, body);
  } else {
    headers.authorization = `Bearer ${TOKEN}`;
  }
  return { route, headers, body };
}

/** Whether the request carries a valid credential for exactly these bytes. */
function authentic({ route, headers, body }: Req): boolean {
  if (route === "github") return headers["x-hub-signature-256"] === `sha256=${hmacHex(GH, body)}`;
  if (route === "clickup") return headers["x-signature"]?.toLowerCase() === hmacHex(CU, body);
  return /^bearer +fuzz-dispatch-token$/i.test(headers.authorization ?? "");
}

const headerNames = [
  "x-hub-signature-256",
  "x-github-event",
  "x-github-delivery",
  "x-signature",
  "authorization",
  "content-length",
  "idempotency-key",
  "x-request-id",
  "content-type",
];

type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "truncate"; at: number }
  | { op: "header"; name: string; value: string }
  | { op: "drop"; name: string }
  | { op: "json"; path: string; value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    op: fc.constant("header" as const),
    name: fc.constantFrom(...headerNames),
    value: fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.constantFrom("sha256=", "Bearer ", "issues", "ping", "0".repeat(64), "-1", "99999999"),
    ),
  }),
  fc.record({ op: fc.constant("drop" as const), name: fc.constantFrom(...headerNames) }),
  fc.record({
    op: fc.constant("json" as const),
    path: fc.constantFrom(
      "action",
      "issue",
      "sender",
      "repository",
      "label",
      "event",
      "history_items",
      "repo",
      "title",
      "kind",
      "comment",
    ),
    value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
  }),
);

function apply(req: Req, m: Mutation): Req {
  const body = req.body;
  switch (m.op) {
    case "flip": {
      if (body.length === 0) return req;
      const copy = body.slice();
      const at = m.at % copy.length;
      copy[at] = (copy[at] as number) ^ (1 << m.bit);
      return { ...req, body: copy };
    }
    case "insert": {
      const at = m.at % (body.length + 1);
      return { ...req, body: new Uint8Array([...body.subarray(0, at), ...m.bytes, ...body.subarray(at)]) };
    }
    case "truncate":
      return { ...req, body: body.subarray(0, m.at % (body.length + 1)) };
    case "header":
      return { ...req, headers: { ...req.headers, [m.name]: m.value.replace(/[\r\n\0]/g, "") } };
    case "drop": {
      const { [m.name]: _dropped, ...rest } = req.headers;
      return { ...req, headers: rest };
    }
    case "json": {
      try {
        const value = JSON.parse(new TextDecoder().decode(body));
        if (typeof value === "object" && value) value[m.path] = m.value;
        return { ...req, body: enc.encode(JSON.stringify(value)) };
      } catch {
        return req;
      }
    }
  }
}

async function send(app: ReturnType<typeof createApp>, req: Req): Promise<Response | "rejected-by-fetch"> {
  const path =
    req.route === "github" ? "/webhooks/github" : req.route === "clickup" ? "/webhooks/clickup" : "/dispatch";
  let request: Request;
  try {
    request = new Request(`http://gateway${path}`, { method: "POST", headers: req.headers, body: req.body });
  } catch {
    return "rejected-by-fetch"; // a header value no HTTP client could send
  }
  return app.request(request);
}

describe("fuzz: mutated deliveries", () => {
  it("never answers 5xx and never publishes without a valid signature (mutations after signing)", async () => {
    const { app, publisher } = setup();
    let index = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Route>("github", "github", "clickup", "dispatch"),
        fc.nat(),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (route, seed, mutations, resign) => {
          const list = seeds[route];
          const payload = list[seed % list.length] as object;
          let req = signed(route, enc.encode(JSON.stringify(payload)), index++);
          for (const m of mutations) req = apply(req, m);
          // Half the time the mutated body is signed again: garbage with a valid signature.
          if (resign && route !== "dispatch") {
            const again = signed(route, req.body, index);
            req = {
              ...req,
              headers: {
                ...req.headers,
                ...(route === "github"
                  ? { "x-hub-signature-256": again.headers["x-hub-signature-256"] as string }
                  : { "x-signature": again.headers["x-signature"] as string }),
              },
            };
          }
          const before = publisher.published.length;
          const res = await send(app, req);
          if (res === "rejected-by-fetch") return;
          expect(res.status).toBeLessThan(500);
          if (publisher.published.length > before) expect(authentic(req)).toBe(true);
          if (!authentic(req) && res.status !== 413 && res.status !== 404) expect(res.status).toBe(401);
        },
      ),
      { numRuns: 3_000 },
    );
    // The property is not vacuous: valid (re-)signed deliveries did get through.
    expect(publisher.published.length).toBeGreaterThan(50);
  });

  it("never answers 5xx to arbitrary bytes and headers, and publishes nothing", async () => {
    const { app, publisher } = setup();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Route>("github", "clickup", "dispatch"),
        fc.dictionary(fc.constantFrom(...headerNames), fc.string({ maxLength: 100 })),
        fc.uint8Array({ maxLength: 2_048 }),
        async (route, headers, body) => {
          const res = await send(app, { route, headers, body });
          if (res === "rejected-by-fetch") return;
          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 1_500 },
    );
    expect(publisher.published).toHaveLength(0);
  });
});

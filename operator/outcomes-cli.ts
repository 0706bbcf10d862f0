/**
 * Exports the recorded outcomes as JSONL (one core OutcomeRecord per line, oldest first, see
 * core/outcome.ts), the format of the seed's `data/agent-outcomes.jsonl`, for pattern extraction and
 * ad-hoc analysis. Records of older operators that do not validate are reduced to the seed's fields;
 * messages that are no outcome record at all are skipped (counted on stderr).
 *
 *   node --import tsx operator/outcomes-cli.ts export [--nats nats://…] [--since 2026-01-01T00:00:00Z] [--outcome clean]
 *
 * Connects as the `patterns` NATS user: NATS_USER / NATS_PASSWORD / NATS_TLS_CA_FILE from the
 * environment (the password never on the command line, where every local user can read it).
 *
 * Reads the OUTCOMES stream with an ephemeral ordered consumer; writes nothing to the stream.
 */

import { parseArgs } from "node:util";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type NatsAuthOptions, natsAuthOptions } from "../core/nats-auth.ts";
import { OUTCOMES_STREAM, outcomeSubject } from "../core/streams.ts";
import { toOutcomeRecord } from "./patterns-job.ts";

export interface ExportOptions {
  natsUrl: string;
  /** `natsAuthOptions("patterns", env)`. */
  auth?: NatsAuthOptions;
  since?: string;
  outcome?: string;
  write: (line: string) => void;
  /** Called once per message that is not an outcome record. */
  onSkipped?: (seq: number) => void;
}

/** Writes every outcome record of the stream (optionally since a time / of one outcome); returns the count written. */
export async function exportOutcomes(o: ExportOptions): Promise<number> {
  const nc = await connect({ servers: o.natsUrl, ...o.auth, name: "agentfactory-outcomes-cli" });
  try {
    const js = jetstream(nc);
    const consumer = await js.consumers.get(OUTCOMES_STREAM, {
      ...(o.since
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(o.since).toISOString() }
        : { deliver_policy: DeliverPolicy.All }),
    });
    const info = await consumer.info(true);
    let left = info.num_pending;
    let count = 0;
    while (left > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(left, 256), expires: 2000 });
      let got = 0;
      for await (const m of batch) {
        got += 1;
        left = m.info.pending;
        // Filtered here: subject filters on ordered consumers need nats-server 2.10.
        if (o.outcome && m.subject !== outcomeSubject(o.outcome)) continue;
        let record: ReturnType<typeof toOutcomeRecord>;
        try {
          record = toOutcomeRecord(m.json());
        } catch {
          record = undefined;
        }
        if (!record) {
          o.onSkipped?.(m.seq);
          continue;
        }
        o.write(`${JSON.stringify(record)}\n`);
        count += 1;
      }
      if (got === 0) break;
    }
    return count;
  } finally {
    await nc.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      nats: { type: "string", default: process.env.NATS_URL ?? "nats://127.0.0.1:4222" },
      since: { type: "string" },
      outcome: { type: "string" },
    },
  });
  if (positionals[0] !== "export") {
    process.stderr.write(
      "usage: outcomes-cli.ts export [--nats URL] [--since ISO-TIME] [--outcome clean|escalated|failed|cancelled]\n",
    );
    process.exit(2);
  }
  let skipped = 0;
  exportOutcomes({
    natsUrl: values.nats,
    auth: natsAuthOptions("patterns", process.env),
    ...(values.since ? { since: values.since } : {}),
    ...(values.outcome ? { outcome: values.outcome } : {}),
    write: (line) => process.stdout.write(line),
    onSkipped: () => {
      skipped += 1;
    },
  }).then(
    (n) =>
      process.stderr.write(`${n} outcome record(s)${skipped ? `, ${skipped} unreadable message(s) skipped` : ""}\n`),
    (err) => {
      process.stderr.write(`export failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

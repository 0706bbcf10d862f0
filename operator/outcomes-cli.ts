/**
 * Exports the recorded outcomes as JSONL (one OutcomeRecord per line, oldest first), the format of
 * the seed's `data/agent-outcomes.jsonl`, for pattern extraction and ad-hoc analysis.
 *
 *   node --import tsx operator/outcomes-cli.ts export [--nats nats://…] [--since 2026-01-01T00:00:00Z] [--outcome clean]
 *
 * Reads the OUTCOMES stream with an ephemeral ordered consumer; writes nothing to the stream.
 */

import { parseArgs } from "node:util";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { OUTCOMES_STREAM, outcomeSubject } from "../core/streams.ts";

export interface ExportOptions {
  natsUrl: string;
  since?: string;
  outcome?: string;
  write: (line: string) => void;
}

/** Writes every outcome record of the stream (optionally since a time / of one outcome); returns the count. */
export async function exportOutcomes(o: ExportOptions): Promise<number> {
  const nc = await connect({ servers: o.natsUrl });
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
        o.write(`${JSON.stringify(m.json())}\n`);
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
      "usage: outcomes-cli.ts export [--nats URL] [--since ISO-TIME] [--outcome clean|blocked|failed|cancelled]\n",
    );
    process.exit(2);
  }
  exportOutcomes({
    natsUrl: values.nats,
    ...(values.since ? { since: values.since } : {}),
    ...(values.outcome ? { outcome: values.outcome } : {}),
    write: (line) => process.stdout.write(line),
  }).then(
    (n) => process.stderr.write(`${n} outcome record(s)\n`),
    (err) => {
      process.stderr.write(`export failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

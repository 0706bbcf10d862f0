// The scripted model API in a process of its own for bench/egress.ts, so that the direct baseline
// crosses a process boundary as the real API (and the gateway's upstream) does. Prints its URL.
import { PROVIDER_KEY } from "../test/egress/harness.ts";
import { startModelSim, text, turn } from "../test/world/anthropic/index.ts";

const sim = await startModelSim({ apiKey: PROVIDER_KEY, scenario: { write: [turn(text("Done. ".repeat(300)))] } });
// The simulator keeps every request; a long benchmark must not hold them all.
setInterval(() => sim.requests.splice(0, sim.requests.length), 1000).unref();
console.log(JSON.stringify({ url: sim.url }));
process.on("SIGTERM", () => sim.stop().then(() => process.exit(0)));

import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface Exchange {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  /** The exact bytes the upstream answered. */
  body: Buffer;
}

/**
 * A pass-through recorder in front of a simulator: it forwards every request unchanged and keeps
 * the exact response bytes, so a test can compare what the upstream sent with what the egress
 * gateway delivered.
 */
export async function startRecorder(
  target: string,
): Promise<{ url: string; exchanges: Exchange[]; stop(): Promise<void> }> {
  const upstream = new URL(target);
  const exchanges: Exchange[] = [];
  const server = createServer((req, res) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const chunks: Buffer[] = [];
        answer.on("data", (c: Buffer) => {
          chunks.push(c);
          res.write(c);
        });
        answer.on("end", () => {
          exchanges.push({
            method: req.method ?? "",
            path: req.url ?? "",
            headers: req.headers,
            status: answer.statusCode ?? 0,
            body: Buffer.concat(chunks),
          });
          res.end();
        });
      },
    );
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanges,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

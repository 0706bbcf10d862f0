import { request } from "node:http";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttemptClaims } from "../../core/attempt-token.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import { claimsFor, type EgressProc, endAttempt, logged, readRun, reserve, startEgress, tokenFor } from "./harness.ts";

// The CONNECT proxy of the real egress gateway: tunnels only to allowlisted host:port pairs, for a
// current attempt; everything else refused before any connection is made.

/** A TCP service counting its connections and echoing what it gets ("a package registry"). */
async function echoServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket: Socket) => {
    count++;
    socket.on("data", (d) => socket.write(Buffer.concat([Buffer.from("echo:"), d])));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => count };
}

interface Tunnel {
  status: number;
  body: string;
  socket: Socket;
}

function connectThrough(proxyPort: number, target: string, auth?: string): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port: proxyPort,
      method: "CONNECT",
      path: target,
      headers: auth ? { "proxy-authorization": auth } : {},
    });
    req.on("connect", (res, socket, head) => {
      if (res.statusCode !== 200) {
        let body = head.toString();
        socket.on("data", (d) => {
          body += d.toString();
        });
        socket.on("end", () => resolve({ status: res.statusCode ?? 0, body, socket }));
        socket.on("close", () => resolve({ status: res.statusCode ?? 0, body, socket }));
        return;
      }
      resolve({ status: 200, body: "", socket });
    });
    req.on("error", reject);
    req.end();
  });
}

const basic = (token: string) => `Basic ${Buffer.from(`runner:${token}`).toString("base64")}`;

describe("egress CONNECT proxy", () => {
  let nats: NatsServer;
  let egress: EgressProc;
  let registry: Awaited<ReturnType<typeof echoServer>>;
  let elsewhere: Awaited<ReturnType<typeof echoServer>>;
  let claims: AttemptClaims;
  let token: string;

  beforeAll(async () => {
    nats = await startNats();
    registry = await echoServer();
    elsewhere = await echoServer();
    egress = await startEgress({
      ...nats.env("egress"),
      MODEL_BASE_URL: "http://127.0.0.1:9",
      CONNECT_ALLOW: `127.0.0.1:${registry.port},registry.npmjs.org`,
    });
    claims = claimsFor({ namespace: "agents", name: "calc-3-0abc", uid: "uid-connect" });
    await reserve(egress.adminUrl, claims, { budgetUsd: 1 });
    token = await tokenFor(claims);
  });
  afterAll(async () => {
    await egress?.stop();
    registry?.server.close();
    elsewhere?.server.close();
    await nats?.stop();
  });

  it("tunnels to an allowlisted host:port for a current attempt", async () => {
    const tunnel = await connectThrough(egress.port, `127.0.0.1:${registry.port}`, basic(token));
    expect(tunnel.status).toBe(200);
    const reply = new Promise<string>((resolve) => tunnel.socket.once("data", (d) => resolve(d.toString())));
    tunnel.socket.write("GET /left-pad");
    expect(await reply).toBe("echo:GET /left-pad");
    tunnel.socket.destroy();
    expect(registry.connections()).toBe(1);
    const line = await logged(egress, (e) => e.kind === "connect" && e.decision === "allowed");
    expect(line).toMatchObject({ run: "agents/calc-3-0abc", stage: "write", host: `127.0.0.1:${registry.port}` });
    expect(line.bytesDown).toBe("echo:GET /left-pad".length);
  });

  it("refuses a host or port not on the allowlist without connecting to it", async () => {
    const port = await connectThrough(egress.port, `127.0.0.1:${elsewhere.port}`, basic(token));
    expect(port.status).toBe(403);
    expect(port.body).toContain("is not on the egress allowlist");
    const host = await connectThrough(egress.port, "attacker.example.com:443", basic(token));
    expect(host.status).toBe(403);
    const lookalike = await connectThrough(egress.port, "registry.npmjs.org.attacker.example.com:443", basic(token));
    expect(lookalike.status).toBe(403);
    expect(elsewhere.connections()).toBe(0);
    const run = await readRun(egress.adminUrl, claims.run);
    expect(run.stages.write?.refused).toBe(3);
    expect(await egress.metrics()).toContain(
      'agentfactory_egress_refused_total{kind="connect",reason="host_not_allowed"} 3',
    );
  });

  it("asks for the attempt token and refuses an ended attempt's", async () => {
    const none = await connectThrough(egress.port, `127.0.0.1:${registry.port}`);
    expect(none.status).toBe(407);
    const other = claimsFor({ namespace: "agents", name: "calc-4-0abc", uid: "uid-ended" });
    await reserve(egress.adminUrl, other, { budgetUsd: 1 });
    const otherToken = await tokenFor(other);
    const open = await connectThrough(egress.port, `127.0.0.1:${registry.port}`, basic(otherToken));
    expect(open.status).toBe(200);
    open.socket.destroy();
    await endAttempt(egress.adminUrl, other);
    expect((await connectThrough(egress.port, `127.0.0.1:${registry.port}`, basic(otherToken))).status).toBe(407);
  });

  it("does not proxy plain HTTP (absolute URLs) at all", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port: egress.port,
        method: "GET",
        path: `http://127.0.0.1:${elsewhere.port}/`,
        headers: { "proxy-authorization": basic(token) },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(403);
    expect(elsewhere.connections()).toBe(0);
  });

  it("needed nothing of NATS beyond the egress user's permissions", () => {
    expect(nats.violations()).toEqual([]);
  });
});

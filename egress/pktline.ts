/**
 * Git's pkt-line framing (gitprotocol-common(5)) and the receive-pack request/response shapes
 * (gitprotocol-pack(5)) the egress gateway needs to read a push's ref updates and to answer one
 * with a refusal git prints to the agent.
 */

export const ZERO_ID = "0000000000000000000000000000000000000000";
const FLUSH = Buffer.from("0000");

export function pkt(data: string | Buffer): Buffer {
  const body = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  if (body.length + 4 > 65520) throw new Error("pkt-line too long");
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0")), body]);
}

export type Packet = { type: "data"; data: Buffer } | { type: "flush" } | { type: "delim" } | { type: "end" };

/** Reads one pkt-line at `offset`; undefined when the buffer ends first or the header is not hex. */
export function readPacket(buf: Buffer, offset: number): { packet: Packet; next: number } | undefined {
  if (offset + 4 > buf.length) return undefined;
  const head = buf.toString("latin1", offset, offset + 4);
  if (!/^[0-9a-f]{4}$/i.test(head)) return undefined;
  const len = Number.parseInt(head, 16);
  if (len === 0) return { packet: { type: "flush" }, next: offset + 4 };
  if (len === 1) return { packet: { type: "delim" }, next: offset + 4 };
  if (len === 2) return { packet: { type: "end" }, next: offset + 4 };
  if (len < 4 || offset + len > buf.length) return undefined;
  return { packet: { type: "data", data: buf.subarray(offset + 4, offset + len) }, next: offset + len };
}

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

export interface ReceivePackRequest {
  updates: RefUpdate[];
  capabilities: string[];
  pushOptions: string[];
  /** The packfile (empty when every update is a deletion). */
  pack: Buffer;
}

export class ProtocolError extends Error {}

const COMMAND = /^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs\/[^\0\n ]+)$/;

/**
 * Parses a `git-receive-pack` request body (already inflated). Push certificates and shallow updates
 * are refused as ProtocolError: the gateway cannot vouch for them.
 */
export function parseReceivePack(body: Buffer): ReceivePackRequest {
  const updates: RefUpdate[] = [];
  let capabilities: string[] = [];
  let offset = 0;
  for (;;) {
    const read = readPacket(body, offset);
    if (!read) throw new ProtocolError("truncated ref-update list");
    offset = read.next;
    if (read.packet.type === "flush") break;
    if (read.packet.type !== "data") throw new ProtocolError("unexpected packet in the ref-update list");
    let line = read.packet.data.toString("utf8");
    if (line.endsWith("\n")) line = line.slice(0, -1);
    if (updates.length === 0) {
      const nul = line.indexOf("\0");
      if (nul >= 0) {
        capabilities = line
          .slice(nul + 1)
          .split(" ")
          .filter(Boolean);
        line = line.slice(0, nul);
      }
    }
    if (line.startsWith("shallow ")) throw new ProtocolError("shallow pushes are not accepted");
    if (line.startsWith("push-cert")) throw new ProtocolError("signed pushes are not accepted");
    const m = COMMAND.exec(line);
    if (!m) throw new ProtocolError(`not a ref update: ${JSON.stringify(line.slice(0, 120))}`);
    updates.push({ old: m[1] ?? "", new: m[2] ?? "", ref: m[3] ?? "" });
  }
  if (updates.length === 0) throw new ProtocolError("no ref updates");
  const pushOptions: string[] = [];
  if (capabilities.includes("push-options")) {
    for (;;) {
      const read = readPacket(body, offset);
      if (!read) throw new ProtocolError("truncated push options");
      offset = read.next;
      if (read.packet.type === "flush") break;
      if (read.packet.type !== "data") throw new ProtocolError("unexpected packet in the push options");
      pushOptions.push(read.packet.data.toString("utf8").replace(/\n$/, ""));
    }
  }
  return { updates, capabilities, pushOptions, pack: body.subarray(offset) };
}

export const isDeletion = (u: RefUpdate) => /^0+$/.test(u.new);
export const isCreation = (u: RefUpdate) => /^0+$/.test(u.old);

/**
 * The receive-pack response refusing every update with `reason`, shaped by the client's capabilities
 * (report-status or report-status-v2, side-band-64k). git prints it as
 * ` ! [remote rejected] <branch> -> <branch> (<reason>)`, and the side-band message as `remote: …`.
 */
export function refusal(req: Pick<ReceivePackRequest, "updates" | "capabilities">, reason: string): Buffer {
  const oneLine = reason.replace(/[\r\n]+/g, " ").slice(0, 900);
  const status = Buffer.concat([pkt("unpack ok\n"), ...req.updates.map((u) => pkt(`ng ${u.ref} ${oneLine}\n`)), FLUSH]);
  const sideband = req.capabilities.includes("side-band-64k") || req.capabilities.includes("side-band");
  const reports = req.capabilities.includes("report-status") || req.capabilities.includes("report-status-v2");
  if (!sideband) return reports ? status : Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (const line of reason.split(/\r?\n/))
    parts.push(pkt(Buffer.concat([Buffer.from([2]), Buffer.from(`${line}\n`)])));
  if (reports) parts.push(pkt(Buffer.concat([Buffer.from([1]), status])));
  parts.push(FLUSH);
  return Buffer.concat(parts);
}

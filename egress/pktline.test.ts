import { describe, expect, it } from "vitest";
import { ProtocolError, parseReceivePack, pkt, readPacket, refusal, ZERO_ID } from "./pktline.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const FLUSH = Buffer.from("0000");

describe("pkt-lines", () => {
  it("frames and reads data, flush, delim", () => {
    const buf = Buffer.concat([pkt("hello\n"), FLUSH, Buffer.from("0001")]);
    expect(buf.subarray(0, 4).toString()).toBe("000a");
    const first = readPacket(buf, 0);
    expect(first?.packet).toEqual({ type: "data", data: Buffer.from("hello\n") });
    expect(readPacket(buf, first?.next ?? 0)?.packet).toEqual({ type: "flush" });
    expect(readPacket(buf, 14)?.packet).toEqual({ type: "delim" });
    expect(readPacket(Buffer.from("00zz"), 0)).toBeUndefined();
    expect(readPacket(Buffer.from("0010abc"), 0)).toBeUndefined();
  });
});

describe("parseReceivePack", () => {
  it("reads the updates, capabilities, push options and the pack", () => {
    const body = Buffer.concat([
      pkt(`${A} ${B} refs/heads/agent/1-x\0 report-status side-band-64k push-options agent=git/2.39\n`),
      pkt(`${ZERO_ID} ${A} refs/heads/other\n`),
      FLUSH,
      pkt("ci.skip\n"),
      FLUSH,
      Buffer.from("PACK\0\0\0\x02rest"),
    ]);
    const req = parseReceivePack(body);
    expect(req.updates).toEqual([
      { old: A, new: B, ref: "refs/heads/agent/1-x" },
      { old: ZERO_ID, new: A, ref: "refs/heads/other" },
    ]);
    expect(req.capabilities).toEqual(["report-status", "side-band-64k", "push-options", "agent=git/2.39"]);
    expect(req.pushOptions).toEqual(["ci.skip"]);
    expect(req.pack.subarray(0, 4).toString()).toBe("PACK");
  });

  it("refuses shallow updates, push certificates, garbage and truncation", () => {
    expect(() => parseReceivePack(Buffer.concat([pkt(`shallow ${A}\n`), FLUSH]))).toThrow(ProtocolError);
    expect(() => parseReceivePack(Buffer.concat([pkt("push-cert\0report-status\n"), FLUSH]))).toThrow(/signed/);
    expect(() => parseReceivePack(Buffer.concat([pkt("hello world\n"), FLUSH]))).toThrow(/not a ref update/);
    expect(() => parseReceivePack(pkt(`${A} ${B} refs/heads/x\n`))).toThrow(/truncated/);
    expect(() => parseReceivePack(FLUSH)).toThrow(/no ref updates/);
    // A ref name with a space or outside refs/ is not a ref update.
    expect(() => parseReceivePack(Buffer.concat([pkt(`${A} ${B} HEAD\n`), FLUSH]))).toThrow(ProtocolError);
  });
});

describe("refusal", () => {
  const updates = [{ old: A, new: B, ref: "refs/heads/main" }];
  it("answers report-status inside side-band 1, the message on band 2", () => {
    const out = refusal({ updates, capabilities: ["report-status", "side-band-64k"] }, "egress: no");
    const first = readPacket(out, 0);
    expect(first?.packet.type).toBe("data");
    const msg = first?.packet.type === "data" ? first.packet.data : Buffer.alloc(0);
    expect(msg[0]).toBe(2);
    expect(msg.subarray(1).toString()).toBe("egress: no\n");
    const second = readPacket(out, first?.next ?? 0);
    const band1 = second?.packet.type === "data" ? second.packet.data : Buffer.alloc(0);
    expect(band1[0]).toBe(1);
    expect(band1.subarray(1).toString()).toBe("000eunpack ok\n0022ng refs/heads/main egress: no\n0000");
    expect(out.subarray(out.length - 4).toString()).toBe("0000");
  });
  it("answers plain report-status without side-band", () => {
    const out = refusal({ updates, capabilities: ["report-status"] }, "multi\nline");
    expect(out.toString()).toBe("000eunpack ok\n0022ng refs/heads/main multi line\n0000");
  });
});

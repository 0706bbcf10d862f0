import { describe, expect, it } from "vitest";
import { loadConfig, parseHostRule } from "./config.ts";
import { hostAllowed, parseAuthority } from "./connect.ts";

const base = {
  ATTEMPT_TOKEN_KEY: "k".repeat(32),
  ADMIN_TOKEN: "admin-token-0123456789",
  MODEL_API_KEY: "sk-ant-test",
};

describe("loadConfig", () => {
  it("resolves secrets and defaults", () => {
    const { config } = loadConfig({ ...base, CONNECT_ALLOW: "registry.npmjs.org, *.pypi.org:443 proxy.golang.org" });
    expect(config.model).toMatchObject({ baseUrl: "https://api.anthropic.com", auth: "x-api-key" });
    expect(config.forge.protectedPaths).toEqual([".github/workflows/**", ".claude/settings.json"]);
    expect(config.connect.allow).toHaveLength(3);
  });
  it("lists every missing or weak secret", () => {
    const error = (() => {
      try {
        loadConfig({ ATTEMPT_TOKEN_KEY: "short", ADMIN_TOKEN: "x" });
      } catch (err) {
        return (err as Error).message;
      }
      return "";
    })();
    for (const problem of [/at least 32 bytes/, /ADMIN_TOKEN/, /MODEL_API_KEY/]) expect(error).toMatch(problem);
  });
});

describe("CONNECT allowlist", () => {
  const allow = ["registry.npmjs.org", "*.pythonhosted.org", "proxy.golang.org:8443"].map(parseHostRule);
  it("matches exact hosts and subdomains of wildcards, on the given port (443 by default)", () => {
    expect(hostAllowed("registry.npmjs.org", 443, allow)).toBe(true);
    expect(hostAllowed("REGISTRY.npmjs.org.", 443, allow)).toBe(true);
    expect(hostAllowed("files.pythonhosted.org", 443, allow)).toBe(true);
    expect(hostAllowed("proxy.golang.org", 8443, allow)).toBe(true);
  });
  it("refuses look-alikes, the wildcard's bare domain, other ports", () => {
    expect(hostAllowed("registry.npmjs.org.evil.com", 443, allow)).toBe(false);
    expect(hostAllowed("evilregistry.npmjs.org", 443, allow)).toBe(false);
    expect(hostAllowed("pythonhosted.org", 443, allow)).toBe(false);
    expect(hostAllowed("evilpythonhosted.org", 443, allow)).toBe(false);
    expect(hostAllowed("registry.npmjs.org", 22, allow)).toBe(false);
    expect(hostAllowed("proxy.golang.org", 443, allow)).toBe(false);
  });
  it("parses CONNECT targets", () => {
    expect(parseAuthority("example.com:443")).toEqual({ host: "example.com", port: 443 });
    expect(parseAuthority("[::1]:8443")).toEqual({ host: "[::1]", port: 8443 });
    expect(parseAuthority("example.com")).toBeUndefined();
    expect(parseAuthority("http://example.com/")).toBeUndefined();
    expect(() => parseHostRule("http://x")).toThrow(/CONNECT_ALLOW/);
  });
});

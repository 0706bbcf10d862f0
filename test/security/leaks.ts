import fs from "node:fs";
import path from "node:path";

/** A token as it could be found: raw, and base64 in the forms git's basic auth or a careless dump use. */
export function tokenForms(token: string): string[] {
  return [token, Buffer.from(`x-access-token:${token}`).toString("base64"), Buffer.from(token).toString("base64")];
}

/** Files under `dir` (links not followed) whose bytes contain any of `needles`. */
export function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.statSync(p).size < 16 * 1024 * 1024) {
        const bytes = fs.readFileSync(p);
        if (needles.some((n) => bytes.includes(n))) hits.push(p);
      }
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return hits;
}

/**
 * Real `gatehouse` processes on loopback for the integration tests: a written config, free
 * ports, JSON logs captured, killed (by pid) when the test process ends. Every wait polls a
 * condition with a deadline.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** The node binary: `$GATEHOUSE_BIN` (scripts/test.sh sets it, building the release node if missing). */
export function binary(): string {
  const bin = process.env.GATEHOUSE_BIN;
  if (!bin) {
    throw new Error("GATEHOUSE_BIN is not set: run the tests with `npm test` (scripts/test.sh), which finds or builds the node");
  }
  return bin;
}

/** Scales deadlines on slow machines (`GATEHOUSE_TEST_PATIENCE`, as the Rust suite does). */
export function patience(ms: number): number {
  const k = Number(process.env.GATEHOUSE_TEST_PATIENCE ?? "1");
  return ms * (Number.isFinite(k) && k > 1 ? k : 1);
}

/** Polls `f` every 20 ms until it returns a value other than undefined, null or false, or throws after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, f: () => T | undefined | null | false | Promise<T | undefined | null | false>): Promise<T> {
  const deadline = Date.now() + patience(timeoutMs);
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A free loopback port, from 20000–32000: below the kernel's ephemeral range, so no outgoing
 * connection of a test running alongside takes it between this check and the node's bind.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port in 20000-32000 after 200 tries");
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) {
    if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
});

export interface NodeSpec {
  name?: string;
  /** The public port; 0 (default) lets the node pick. A fixed port survives a restart. */
  publicPort?: number;
  clusterPort?: number;
  seeds?: number[];
  cookie?: string;
  /** Extra lines for the `[node]` section. */
  nodeLines?: string;
  /** Extra TOML sections (`[limits]`, `[auth]`, …). */
  toml?: string;
  env?: Record<string, string>;
}

export class GatehouseNode {
  proc!: ChildProcess;
  publicAddr = "";
  adminAddr = "";
  readonly logs: string[] = [];
  private exited?: Promise<number | null>;
  private readonly dir: string;
  private readonly cfg: string;

  private constructor(readonly spec: NodeSpec) {
    this.dir = mkdtempSync(join(tmpdir(), "gatehouse-js-test-"));
    this.cfg = join(this.dir, "node.toml");
    const n = spec.name ? `name = "${spec.name}"\n` : "";
    const seeds = spec.seeds ? `seeds = [${spec.seeds.map((p) => `"127.0.0.1:${p}"`).join(", ")}]\n` : "";
    const toml =
      `[node]\n${n}listen = "127.0.0.1:${spec.publicPort ?? 0}"\nadmin_listen = "127.0.0.1:0"\n` +
      `cluster_listen = "127.0.0.1:${spec.clusterPort ?? 0}"\n${seeds}shutdown_grace_s = 5\n${spec.nodeLines ?? ""}\n` +
      `[log]\nlevel = "info"\nformat = "json"\n${spec.toml ?? ""}\n`;
    writeFileSync(this.cfg, toml);
  }

  static async start(spec: NodeSpec = {}): Promise<GatehouseNode> {
    const n = new GatehouseNode(spec);
    await n.spawn();
    return n;
  }

  get name(): string {
    return this.spec.name ?? "node";
  }

  get pid(): number {
    return this.proc.pid!;
  }

  wsUrl(query = ""): string {
    return `ws://${this.publicAddr}/ws${query ? `?${query}` : ""}`;
  }

  /** Starts the process and waits for its `listening` log line. */
  private async spawn(): Promise<void> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      // The suite's own GATEHOUSE_* settings must not reach the node.
      if (v !== undefined && !k.startsWith("GATEHOUSE_")) env[k] = v;
    }
    Object.assign(env, this.spec.env ?? {});
    if (this.spec.cookie) env.GATEHOUSE_COOKIE = this.spec.cookie;
    const proc = spawn(binary(), ["--config", this.cfg], { stdio: ["ignore", "ignore", "pipe"], env });
    this.proc = proc;
    live.add(proc);
    this.exited = new Promise((resolve) => proc.once("exit", (code) => {
      live.delete(proc);
      resolve(code);
    }));
    const listening = new Promise<void>((resolve, reject) => {
      const rl = createInterface({ input: proc.stderr! });
      rl.on("line", (line) => {
        this.logs.push(line);
        if (this.logs.length > 5000) this.logs.splice(0, 1000);
        try {
          const v = JSON.parse(line) as { message?: string; public?: string; admin?: string; fields?: { message?: string; public?: string; admin?: string } };
          const f = v.fields ?? v;
          if ((f.message ?? v.message) === "listening" && (f.public ?? v.public) && (f.admin ?? v.admin)) {
            this.publicAddr = (f.public ?? v.public)!;
            this.adminAddr = (f.admin ?? v.admin)!;
            resolve();
          }
        } catch {
          /* not JSON */
        }
      });
      proc.once("exit", (code) => reject(new Error(`gatehouse exited (${code}) before listening:\n${this.logs.slice(-30).join("\n")}`)));
    });
    const timeout = patience(30_000);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        listening,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`gatehouse did not listen within ${timeout} ms:\n${this.logs.join("\n")}`)), timeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts the same node again (same config and ports) after it exited. */
  async restart(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.kill9();
      await this.waitExit(10_000);
    }
    await this.spawn();
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) process.kill(this.pid, sig);
  }

  kill9(): void {
    this.signal("SIGKILL");
  }

  /** Resolves with the exit code (null when killed by a signal); throws after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited!,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms`)), patience(timeoutMs));
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the node (SIGKILL: tests stop what they started, by pid) and removes its directory. */
  async stop(): Promise<void> {
    this.kill9();
    await this.waitExit(10_000).catch(() => undefined);
    if (!process.env.GATEHOUSE_TEST_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }

  /** A JSON request to the admin listener. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    return jsonRequest(`http://${this.adminAddr}${path}`, method, body);
  }

  /** A JSON request to the public listener (the backend API). */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    return jsonRequest(`http://${this.publicAddr}${path}`, method, body);
  }
}

/** Sends `body` as JSON (when given); the status and the answer, parsed when it is JSON. */
async function jsonRequest(url: string, method: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, json };
}

/** `n` nodes named node-a, node-b, … sharing a cookie and seeds; resolves once each sees all active. */
export async function startCluster(n: number, spec: Omit<NodeSpec, "name" | "clusterPort" | "seeds" | "cookie"> = {}): Promise<GatehouseNode[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const cookie = randomBytes(32).toString("hex");
  const names = ports.map((_, i) => `node-${String.fromCharCode(97 + i)}`);
  const nodes = await Promise.all(
    ports.map((p, i) => GatehouseNode.start({ ...spec, name: names[i], clusterPort: p, seeds: ports, cookie })),
  );
  await waitActive(nodes, names);
  return nodes;
}

/** Waits until every node in `nodes` sees exactly `names` active, in its view and its placement view. */
export async function waitActive(nodes: GatehouseNode[], names: string[], timeoutMs = 30_000): Promise<void> {
  const want = [...names].sort();
  for (const node of nodes) {
    await until(`${node.name} to see ${want.join(",")} active`, timeoutMs, async () => {
      const r = await node.admin("GET", "/admin/v1/cluster").catch(() => undefined);
      const list = r?.json?.nodes as { name: string; state: string; admin_address?: string; active_view?: string[] }[] | undefined;
      if (!list) return false;
      const active = list.filter((x) => x.state === "active").map((x) => x.name).sort();
      const me = list.find((x) => x.admin_address === node.adminAddr);
      const view = [...(me?.active_view ?? [])].sort();
      return JSON.stringify(active) === JSON.stringify(want) && JSON.stringify(view) === JSON.stringify(want);
    });
  }
}

/** An HS256 JWT signed with `secret`. */
export function hs256(claims: Record<string, unknown>, secret: string): string {
  const b64 = (x: string | Buffer) => Buffer.from(x).toString("base64url");
  const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/**
 * A real browser end to end: Debian's Chromium, driven by playwright-core, opens the chat demo
 * (examples/chat/) twice, as two users in separate browser contexts, through HAProxy
 * (deploy/haproxy/haproxy.cfg as shipped, only its GH_* addresses set; the nodes read its PROXY
 * protocol headers) in front of a three-node
 * cluster started by deploy/local-cluster.sh. Both users type messages into the page while
 * deploy/rolling-upgrade.sh replaces every node.
 *
 * Asserted: each page shows every message exactly once, in seq order, in one epoch, with no gap;
 * both pages show the same messages; every message a page had acknowledged is on both pages;
 * nothing a page sent is lost silently (each is acknowledged, or failed with a reason); each page
 * went through at least one drain (1012) and resumed, and ends connected. Reported: the figures
 * of each page (messages, gaps, reconnects, time disconnected, the nodes it was on).
 *
 * Run by scripts/test-browser.sh (npm run test:browser), which installs what it needs.
 * Environment: GATEHOUSE_BIN (the node binary, required), CHROMIUM (default /usr/bin/chromium),
 * GATEHOUSE_TEST_KEEP=1 keeps the work directory (node logs, HAProxy's log, screenshots).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";

const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const REPO = resolve(PACKAGE, "../..");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ROOM = "chat:e2e";
const USERS = ["alice", "bob"] as const;
/** Seconds rolling-upgrade.sh waits between two nodes: the clients' reconnect window (5 s) plus HAProxy's rise (2 s), as in the Rust rolling-upgrade test. */
const PAUSE_S = 6;
const started = Date.now();

function say(msg: string): void {
  console.log(`[browser-e2e +${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}

function fail(msg: string): never {
  throw new Error(msg);
}

async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const k = Number(process.env.GATEHOUSE_TEST_PATIENCE ?? "1");
  const deadline = Date.now() + timeoutMs * (k > 1 ? k : 1);
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() >= deadline) fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20_000 + Math.floor(Math.random() * 12_000);
    if (await portFree(p)) return p;
  }
  fail("no free port");
}

/**
 * HAProxy (deploy/haproxy/haproxy.cfg) sends a PROXY protocol v2 header on every connection to
 * a node, from GH_SOURCE; the nodes read it from that address only. As in the Rust
 * rolling-upgrade test: HAProxy connects from 127.0.0.2, the nodes (at their start and after the
 * upgrade) trust it.
 */
const HAPROXY_SOURCE = "127.0.0.2";
const PROXIED_NODES = { GATEHOUSE_PROXY_PROTOCOL: "true", GATEHOUSE_TRUSTED_PROXIES: HAPROXY_SOURCE };

/** The environment for the deploy scripts: ours without GATEHOUSE_*, plus `extra`. */
function scriptEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("GATEHOUSE_")) env[k] = v;
  return { ...env, ...extra };
}

/** Runs a repository script, bounded; resolves with its status and output. */
function runScript(script: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const p = spawn("bash", [join(REPO, script), ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n(killed after ${timeoutMs} ms)`;
      p.kill("SIGTERM");
    }, timeoutMs);
    p.on("exit", (code) => {
      clearTimeout(timer);
      res({ code, out });
    });
  });
}

interface Cluster {
  runDir: string;
  offset: number;
}

async function startCluster(runDir: string, bin: string): Promise<Cluster> {
  for (let attempt = 0; attempt < 8; attempt++) {
    // All ports (8080/9100/7100 + offset + 1..3) stay below the ephemeral range.
    const offset = 2000 + Math.floor(Math.random() * 21_000);
    let free = true;
    for (const base of [8080, 9100, 7100]) for (let i = 1; i <= 3; i++) free &&= await portFree(base + offset + i);
    if (!free) continue;
    const { code, out } = await runScript(
      "deploy/local-cluster.sh",
      ["3", "--detach"],
      scriptEnv({ ...PROXIED_NODES, GATEHOUSE_BIN: bin, RUN_DIR: runDir, BASE_PORT_OFFSET: String(offset), READY_TIMEOUT_S: "60" }),
      90_000,
    );
    if (code === 0) return { runDir, offset };
    if (code === 3) {
      say(`a port at offset ${offset} was taken; retrying`);
      continue;
    }
    fail(`deploy/local-cluster.sh failed (${code}):\n${out}`);
  }
  fail("no free port offset for a local cluster after 8 attempts");
}

async function stopCluster(c: Cluster): Promise<void> {
  const { code, out } = await runScript("deploy/local-cluster.sh", ["stop", c.runDir], scriptEnv({ STOP_TIMEOUT_S: "10" }), 60_000);
  if (code !== 0) say(`local-cluster.sh stop: ${code}\n${out}`);
}

interface Haproxy {
  proc: ChildProcess;
  front: number;
  stats: number;
  log: string;
}

async function startHaproxy(dir: string, offset: number): Promise<Haproxy> {
  const front = await freePort();
  const stats = await freePort();
  const log = join(dir, "haproxy.log");
  const env = scriptEnv({
    GH_FRONTEND: `127.0.0.1:${front}`,
    GH_STATS: `127.0.0.1:${stats}`,
    GH_NODE_A: `127.0.0.1:${8080 + offset + 1}`,
    GH_NODE_B: `127.0.0.1:${8080 + offset + 2}`,
    GH_NODE_C: `127.0.0.1:${8080 + offset + 3}`,
    GH_SOURCE: HAPROXY_SOURCE,
  });
  delete env.GH_DNS;
  const out = createWriteStream(log);
  const proc = spawn("haproxy", ["-db", "-f", join(REPO, "deploy/haproxy/haproxy.cfg")], { env, stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout!.pipe(out);
  proc.stderr!.pipe(createWriteStream(join(dir, "haproxy.err")));
  await new Promise<void>((res, rej) => {
    proc.once("spawn", () => res());
    proc.once("error", (e) => rej(new Error(`haproxy did not start: ${e.message} (install it: clients/js/scripts/install-system-deps.sh)`)));
  });
  return { proc, front, stats, log };
}

async function haproxyUp(stats: number): Promise<Record<string, string> | undefined> {
  try {
    const body = await (await fetch(`http://127.0.0.1:${stats}/stats;csv`, { signal: AbortSignal.timeout(2000) })).text();
    const lines = body.split("\n");
    const header = lines[0]!.replace(/^# /, "").split(",");
    const col = header.indexOf("status");
    const out: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const f = l.split(",");
      if (f[0] === "gatehouse_nodes" && f[1] && f[1] !== "BACKEND") out[f[1]] = f[col] ?? "";
    }
    return out;
  } catch {
    return undefined;
  }
}

/** What a page exposes as window.gatehouseChat (examples/chat/chat.js). */
interface PageState {
  state: string;
  node: string | null;
  clientId: string | null;
  messages: { seq: number; epoch: string; from: { client?: string; user?: string }; data: { name?: string; text?: string } }[];
  sent: { text: string; status: "pending" | "acked" | "failed"; seq: number | null; error: string | null; offline: boolean }[];
  log: { at: number; kind: string; text: string }[];
  gaps: unknown[];
  errors: { code: string; message: string }[];
  members: { client: string; user: string }[];
  stats: { connects: number; disconnects: number; delivered: number; duplicatesDropped: number; gaps: number; disconnectedMs: number };
  statusText: string;
  shownSeqs: number[];
}

async function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => {
    const c = (window as unknown as { gatehouseChat: Record<string, unknown> & { client: { stats: unknown } } }).gatehouseChat;
    return JSON.parse(
      JSON.stringify({
        state: c.state,
        node: c.node,
        clientId: c.clientId,
        messages: c.messages,
        sent: c.sent,
        log: c.log,
        gaps: c.gaps,
        errors: c.errors,
        members: c.members,
        stats: c.client.stats,
        statusText: document.getElementById("status")!.textContent!.replace(/\s+/g, " ").trim(),
        shownSeqs: [...document.querySelectorAll("#messages li[data-seq]")].map((li) => Number((li as HTMLElement).dataset.seq)),
      }),
    ) as PageState;
  });
}

/** Types numbered messages into the page's form until told to stop. */
async function typist(page: Page, user: string, stop: { now: boolean }, counter: { n: number }): Promise<void> {
  while (!stop.now) {
    counter.n++;
    await page.fill("#text", `${user} ${counter.n}`);
    await page.press("#text", "Enter");
    // The typing pace (workload), not a wait for readiness.
    await new Promise((r) => setTimeout(r, 120 + Math.floor(Math.random() * 80)));
  }
}

interface Figures {
  user: string;
  received: number;
  typed: number;
  acked: number;
  /** Typed while the page was not connected: they waited in the outbox. */
  typedOffline: number;
  typedOfflineAcked: number;
  failed: Record<string, number>;
  gaps: number;
  duplicatesDropped: number;
  reconnects: number;
  closeCodes: number[];
  reconnectDelaysMs: number[];
  disconnectedMs: number[];
  totalDisconnectedMs: number;
  nodes: string[];
  resumed: number;
  states: string[];
}

function figures(user: string, s: PageState, typed: number): Figures {
  const failed: Record<string, number> = {};
  for (const x of s.sent) if (x.status === "failed") failed[x.error ?? "?"] = (failed[x.error ?? "?"] ?? 0) + 1;
  const disconnectedMs: number[] = [];
  let down: number | undefined;
  const nodes: string[] = [];
  const closeCodes: number[] = [];
  const delays: number[] = [];
  let resumed = 0;
  for (const e of s.log) {
    if (e.kind === "disconnected") {
      down ??= e.at;
      closeCodes.push(Number(/closed (\d+)/.exec(e.text)?.[1]));
    }
    if (e.kind === "reconnecting") delays.push(Number(/in (\d+) ms/.exec(e.text)?.[1]));
    if (e.kind === "connected") {
      nodes.push(/on (\S+)/.exec(e.text)?.[1] ?? "?");
      if (e.text.includes("session resumed")) resumed++;
      if (down !== undefined) disconnectedMs.push(e.at - down);
      down = undefined;
    }
  }
  return {
    user,
    received: s.messages.length,
    typed,
    acked: s.sent.filter((x) => x.status === "acked").length,
    typedOffline: s.sent.filter((x) => x.offline).length,
    typedOfflineAcked: s.sent.filter((x) => x.offline && x.status === "acked").length,
    failed,
    gaps: s.gaps.length,
    duplicatesDropped: s.stats.duplicatesDropped,
    reconnects: nodes.length - 1,
    closeCodes,
    reconnectDelaysMs: delays,
    disconnectedMs,
    totalDisconnectedMs: s.stats.disconnectedMs,
    nodes,
    resumed,
    states: s.log.filter((e) => e.kind.startsWith("state-")).map((e) => e.text),
  };
}

async function main(): Promise<void> {
  const bin = process.env.GATEHOUSE_BIN ?? fail("GATEHOUSE_BIN is not set: run this through scripts/test-browser.sh (npm run test:browser)");
  if (!existsSync(CHROMIUM)) {
    fail(`no Chromium at ${CHROMIUM}: install Debian's package (as root: apt-get install -y chromium, or clients/js/scripts/install-system-deps.sh), or set CHROMIUM to its path`);
  }
  const work = mkdtempSync(join(tmpdir(), "gatehouse-browser-e2e-"));
  const artifacts = join(work, "artifacts");
  mkdirSync(artifacts);
  const runDir = join(work, "run");
  mkdirSync(runDir);
  let ok = false;
  let cluster: Cluster | undefined;
  let haproxy: Haproxy | undefined;
  let browser: Browser | undefined;
  let server: { close(): void } | undefined;
  let cleaning: Promise<void> | undefined;
  // Stopped from outside (the suite's time limit sends SIGTERM first): stop what was started.
  // The cluster's nodes run in process groups of their own (local-cluster.sh), so only this
  // cleanup reaches them.
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => {
      say(`${sig}: stopping the browser, HAProxy and the cluster`);
      // What fails because of the stop (a page closed under a wait) must not end the process first.
      process.on("unhandledRejection", () => undefined);
      void cleanup().finally(() => process.exit(1));
    });
  }
  const pageErrors: string[] = [];
  try {
    cluster = await startCluster(runDir, bin);
    say(`cluster up (ports offset ${cluster.offset}, run dir ${runDir})`);
    haproxy = await startHaproxy(work, cluster.offset);
    const h = haproxy;
    await until("HAProxy to see node-a, node-b and node-c UP", 30_000, async () => {
      const st = await haproxyUp(h.stats);
      return st && ["node-a", "node-b", "node-c"].every((n) => st[n] === "UP");
    });
    say(`HAProxy up on 127.0.0.1:${haproxy.front} (deploy/haproxy/haproxy.cfg)`);

    const { serve } = (await import(pathToFileURL(join(PACKAGE, "examples/chat/serve.mjs")).href)) as {
      serve(o: { port: number }): Promise<{ server: { close(): void }; url: string }>;
    };
    const web = await serve({ port: 0 });
    server = web.server;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      chromiumSandbox: false,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    say(`Chromium ${browser.version()} (${CHROMIUM})`);
    const wsUrl = `ws://127.0.0.1:${haproxy.front}/ws`;
    const pages: Page[] = [];
    for (const user of USERS) {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.on("pageerror", (e) => pageErrors.push(`${user}: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") pageErrors.push(`${user} console: ${m.text()}`);
      });
      await page.goto(`${web.url}/examples/chat/?url=${encodeURIComponent(wsUrl)}&room=${ROOM}&name=${user}`);
      pages.push(page);
    }
    for (const [i, page] of pages.entries()) {
      await until(`${USERS[i]}'s page to be connected, joined and see both members`, 20_000, async () => {
        const s = await pageState(page);
        return s.state === "connected" && s.log.some((e) => e.kind === "joined") && s.members.length === 2;
      });
    }
    const first = await Promise.all(pages.map(pageState));
    say(`pages connected: ${USERS.map((u, i) => `${u} on ${first[i]!.node}`).join(", ")}`);

    // Both users type; the cluster is upgraded under them.
    const stop = { now: false };
    const typed = USERS.map(() => ({ n: 0 }));
    // Handled at once: a page closed under a typist (a failure, or a stop from outside) must not
    // end the process before the cleanup.
    const typingErrors: string[] = [];
    const typing = pages.map((p, i) =>
      typist(p, USERS[i]!, stop, typed[i]!).catch((e: unknown) => {
        stop.now = true;
        typingErrors.push(`${USERS[i]}: ${e instanceof Error ? e.message : String(e)}`);
      }),
    );
    await until("a few messages on both pages", 20_000, async () => (await Promise.all(pages.map(pageState))).every((s) => s.messages.length >= 10));
    const next = join(work, "gatehouse-next");
    symlinkSync(bin, next);
    say("rolling upgrade: deploy/rolling-upgrade.sh");
    const upgradeStarted = Date.now();
    const upgrade = await runScript(
      "deploy/rolling-upgrade.sh",
      [cluster.runDir, next],
      scriptEnv({ ...PROXIED_NODES, PAUSE_S: String(PAUSE_S), DRAIN_TIMEOUT_S: "30", READY_TIMEOUT_S: "30", STOP_TIMEOUT_S: "15" }),
      150_000,
    );
    const upgradeMs = Date.now() - upgradeStarted;
    if (upgrade.code !== 0) fail(`rolling-upgrade.sh failed (${upgrade.code}):\n${upgrade.out}`);
    say(`upgraded in ${(upgradeMs / 1000).toFixed(1)} s:\n${upgrade.out.trim()}`);
    // A little more chat on the new nodes, then stop typing.
    const after = typed.map((t) => t.n);
    await until("more messages typed after the upgrade", 20_000, () => typed.every((t, i) => t.n >= after[i]! + 10));
    stop.now = true;
    await Promise.all(typing);
    if (typingErrors.length) fail(`typing into the pages failed:\n${typingErrors.join("\n")}`);

    // Every publish settles; both pages catch up with everything acknowledged.
    await until("every typed message to be acknowledged or failed", 30_000, async () =>
      (await Promise.all(pages.map(pageState))).every((s) => s.sent.every((x) => x.status !== "pending")),
    );
    let states = await Promise.all(pages.map(pageState));
    const maxAcked = Math.max(...states.flatMap((s) => s.sent.filter((x) => x.status === "acked").map((x) => x.seq!)));
    await until(`both pages to reach seq ${maxAcked}`, 20_000, async () => {
      states = await Promise.all(pages.map(pageState));
      return states.every((s) => (s.messages.at(-1)?.seq ?? 0) >= maxAcked);
    });
    for (const [i, page] of pages.entries()) await page.screenshot({ path: join(artifacts, `${USERS[i]}.png`), fullPage: true });

    // --- Checks -------------------------------------------------------------------------------
    const problems: string[] = [];
    const ackedBy = new Map<number, string>(); // seq -> text, from the publishers' own acks
    for (const [i, s] of states.entries()) {
      const user = USERS[i]!;
      for (const x of s.sent) {
        if (x.status === "acked") {
          if (ackedBy.has(x.seq!)) problems.push(`seq ${x.seq} acknowledged twice (${ackedBy.get(x.seq!)} and ${x.text})`);
          ackedBy.set(x.seq!, x.text);
        }
      }
      const seqs = s.messages.map((m) => m.seq);
      for (let k = 1; k < seqs.length; k++) {
        if (seqs[k] !== seqs[k - 1]! + 1) problems.push(`${user}: seq ${seqs[k]} after ${seqs[k - 1]} (lost, duplicated or reordered)`);
      }
      if (seqs[0] !== 1) problems.push(`${user}: the first message is seq ${seqs[0]}, not 1`);
      const epochs = new Set(s.messages.map((m) => m.epoch));
      if (epochs.size !== 1) problems.push(`${user}: ${epochs.size} epochs`);
      const texts = s.messages.map((m) => m.data.text);
      if (new Set(texts).size !== texts.length) problems.push(`${user}: a text shown twice`);
      if (s.gaps.length) problems.push(`${user}: gaps ${JSON.stringify(s.gaps)}`);
      if (JSON.stringify(s.shownSeqs) !== JSON.stringify(seqs)) problems.push(`${user}: the page shows seqs ${s.shownSeqs.length} that differ from what it received`);
      if (s.state !== "connected") problems.push(`${user}: ends ${s.state}`);
      const f = figures(user, s, typed[i]!.n);
      if (f.typed !== s.sent.length) problems.push(`${user}: typed ${f.typed}, the page sent ${s.sent.length}`);
      if (!f.closeCodes.includes(1012)) problems.push(`${user}: never moved by a drain (closes ${f.closeCodes})`);
      if (f.reconnects < 1) problems.push(`${user}: no reconnect`);
      for (const [code, n] of Object.entries(f.failed)) {
        // At most once: a publish in flight when its node let the page go, whose fate the rejoin could not show.
        if (code !== "unknown_outcome") problems.push(`${user}: ${n} sends failed with ${code}`);
      }
    }
    const [a, b] = states as [PageState, PageState];
    const view = (s: PageState) => s.messages.map((m) => `${m.epoch}/${m.seq}/${m.data.text}`);
    if (JSON.stringify(view(a)) !== JSON.stringify(view(b))) problems.push("the two pages show different messages");
    const shown = new Map(a.messages.map((m) => [m.seq, m.data.text]));
    for (const [seq, text] of ackedBy) {
      if (shown.get(seq) !== text) problems.push(`acknowledged "${text}" (seq ${seq}) is shown as ${JSON.stringify(shown.get(seq))}`);
    }
    const unknown = states.flatMap((s) => s.sent.filter((x) => x.status === "failed"));
    const unknownShown = unknown.filter((x) => a.messages.some((m) => m.data.text === x.text)).length;
    if (pageErrors.length) problems.push(`page errors: ${pageErrors.join("; ")}`);

    // HAProxy's routes of /ws requests, per node and status.
    const routes: Record<string, number> = {};
    for (const l of readFileSync(haproxy.log, "utf8").split("\n")) {
      if (!l.includes('"GET /ws')) continue;
      const f = l.split(/\s+/);
      const key = `${f[3]?.split("/")[1] ?? "?"} ${f[5] ?? "?"}`;
      routes[key] = (routes[key] ?? 0) + 1;
    }

    const figs = states.map((s, i) => figures(USERS[i]!, s, typed[i]!.n));
    for (const f of figs) {
      say(
        `${f.user}: received ${f.received} messages (seq 1..${maxAcked}), typed ${f.typed} (${f.typedOffline} while disconnected, ${f.typedOfflineAcked} of them acknowledged after the rejoin), acknowledged ${f.acked}, failed ${JSON.stringify(f.failed)}; ` +
          `gaps ${f.gaps}; duplicates dropped ${f.duplicatesDropped}; ${f.reconnects} reconnects (closes ${f.closeCodes.join(",")}; waits ${f.reconnectDelaysMs.join(",")} ms; ` +
          `${f.resumed} resumed); disconnected ${f.disconnectedMs.join(" + ")} ms = ${f.totalDisconnectedMs} ms; nodes ${f.nodes.join(" -> ")}; states ${f.states.join(" > ")}`,
      );
    }
    say(`HAProxy /ws routes (server status: count): ${JSON.stringify(routes)}; in-flight sends of unknown outcome: ${unknown.length} (${unknownShown} of them delivered, once)`);
    const result = { ok: problems.length === 0, upgradeMs, messages: a.messages.length, acknowledged: ackedBy.size, pages: figs, haproxyRoutes: routes, problems };
    writeFileSync(join(artifacts, "result.json"), JSON.stringify(result, null, 2));
    console.log(`JS-BROWSER-E2E ${JSON.stringify(result)}`);
    if (problems.length) fail(`the browser test found problems:\n${problems.join("\n")}`);
    ok = true;
    say(`passed; screenshots and figures in ${artifacts}`);
  } finally {
    await cleanup();
  }

  /** Stops everything; the same promise for every caller (the finally and a signal handler). */
  function cleanup(): Promise<void> {
    cleaning ??= stopAll();
    return cleaning;
  }

  async function stopAll(): Promise<void> {
    await browser?.close().catch(() => undefined);
    server?.close();
    if (haproxy && haproxy.proc.exitCode === null && haproxy.proc.pid !== undefined) {
      try {
        process.kill(haproxy.proc.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    if (cluster) await stopCluster(cluster);
    // The screenshots and figures are copied next to the build for the report either way.
    const keep = join(PACKAGE, ".test-build", "browser-artifacts");
    rmSync(keep, { recursive: true, force: true });
    mkdirSync(keep, { recursive: true });
    for (const f of ["alice.png", "bob.png", "result.json"]) {
      if (existsSync(join(artifacts, f))) writeFileSync(join(keep, f), readFileSync(join(artifacts, f)));
    }
    if (!ok || process.env.GATEHOUSE_TEST_KEEP) say(`kept ${work} (node logs in run/, haproxy.log)`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`[browser-e2e] FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);

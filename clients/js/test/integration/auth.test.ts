/**
 * Close codes that decide between stopping and reconnecting, against a real node: an admin kick
 * (4003: the client stops) and an expired token (4001: a new token from getToken, the same
 * session, the room rejoined without a loss). Also the README's example, run as written.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync, symlinkSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import WebSocket from "ws";
import { connect } from "@gatehouse/client";
import { GatehouseNode, hs256, until } from "../harness/node.js";
import { Recorder, contiguity } from "../harness/recorder.js";

const SECRET = "js-client-test-secret-0123456789abcdef";
const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

describe("stop or reconnect", () => {
  test("a kick (4003) stops the client: no reconnect, everything waiting fails with closed", async () => {
    const node = await GatehouseNode.start();
    try {
      const c = connect(node.wsUrl(), { WebSocket });
      const rec = new Recorder(c);
      const room = c.room("chat:kick");
      await room.join();
      const id = c.welcome!.client;
      const kick = await node.admin("POST", `/admin/v1/clients/${id}/kick`, { reason: "test kick" });
      assert.equal(kick.status, 200, JSON.stringify(kick.json));
      await until("the client to stop", 10_000, () => c.state === "closed");
      assert.equal(rec.disconnected.length, 1);
      assert.equal(rec.disconnected[0]!.code, 4003);
      assert.equal(rec.disconnected[0]!.willReconnect, false);
      assert.equal(rec.reconnecting.length, 0);
      await assert.rejects(room.publish({ x: 1 }), /closed/);
      await until("the node to have no connection", 10_000, async () => (await node.admin("GET", "/admin/v1/stats")).json.connections === 0);
    } finally {
      await node.stop();
    }
  });

  for (const tokenTransport of ["protocol", "query"] as const) {
    test(`an expired token (4001): getToken, reconnect at once, same session, room rejoined without a loss (token as ${tokenTransport})`, async () => {
      const node = await GatehouseNode.start({
        toml: '[auth]\nrequired = true\nalgorithm = "HS256"\n',
        env: { GATEHOUSE_JWT_SECRET: SECRET },
      });
      try {
        const issued: number[] = [];
        const getToken = async () => {
          // The first token lasts 2 s; the next ones an hour.
          const ttl = issued.length === 0 ? 2 : 3600;
          const exp = Math.floor(Date.now() / 1000) + ttl;
          issued.push(exp);
          return hs256({ sub: "u-42", exp }, SECRET);
        };
        const c = connect(node.wsUrl(), { WebSocket, getToken, tokenTransport });
        const rec = new Recorder(c);
        const room = c.room("chat:token");
        await room.join();
        assert.equal(c.welcome!.user, "u-42");
        const pubClient = connect(node.wsUrl(), { WebSocket, token: hs256({ sub: "pub", exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET), tokenTransport });
        const pubRoom = pubClient.room("chat:token");
        await pubRoom.join();
        let n = 0;
        const acked: number[] = [];
        let stop = false;
        const loop = (async () => {
          while (!stop) {
            acked.push((await pubRoom.publish({ n: ++n })).seq);
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        await until("the token to expire and the client to come back", 10_000, () => rec.connected.length >= 2);
        const before = acked.length;
        await until("more messages after", 10_000, () => acked.length >= before + 20);
        stop = true;
        await loop;
        await until("the client to catch up", 10_000, () => rec.lastSeq("chat:token") >= acked.at(-1)!);
        assert.equal(rec.disconnected[0]!.code, 4001);
        assert.equal(rec.reconnecting[0]!.cause, "token");
        assert.equal(rec.reconnecting[0]!.delayMs, 0);
        assert.equal(issued.length, 2, "getToken: the first token, then one after the 4001");
        assert.equal(rec.connected[1]!.resumed, true);
        assert.equal(rec.connected[1]!.client, rec.connected[0]!.client);
        assert.equal(contiguity(rec.seqs("chat:token")), "");
        assert.equal(rec.gaps.length, 0);
        c.close();
        pubClient.close();
      } finally {
        await node.stop();
      }
    });
  }
});

describe("the README's example", () => {
  test("runs as written against a node and exits (clients/js/README.md, and README.md when it shows it)", async () => {
    const node = await GatehouseNode.start();
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-js-readme-"));
    try {
      const readme = readFileSync(join(PACKAGE, "README.md"), "utf8");
      const m = /<!-- example:start -->\s*```js\n([\s\S]*?)```\s*<!-- example:end -->/.exec(readme);
      assert.ok(m, "README.md has the example between <!-- example:start --> and <!-- example:end -->");
      const code = m[1]!;
      assert.ok(code.trim().split("\n").length <= 10, "ten lines");
      // The repository's README shows the same block (between the same markers): it is this one.
      const top = readFileSync(join(PACKAGE, "../../README.md"), "utf8");
      const t = /<!-- example:start -->\s*```js\n([\s\S]*?)```\s*<!-- example:end -->/.exec(top);
      if (top.includes("<!-- example:start -->")) assert.equal(t?.[1], code, "README.md and clients/js/README.md show the same example");
      assert.ok(code.includes('"ws://127.0.0.1:8081/ws"'), "the example connects to deploy/local-cluster.sh's first node");
      // As an app would have it: the package and ws in its node_modules. Only the URL differs.
      mkdirSync(join(dir, "node_modules", "@gatehouse"), { recursive: true });
      symlinkSync(PACKAGE, join(dir, "node_modules", "@gatehouse", "client"));
      symlinkSync(join(PACKAGE, "node_modules", "ws"), join(dir, "node_modules", "ws"));
      writeFileSync(join(dir, "example.mjs"), code.replace("ws://127.0.0.1:8081/ws", node.wsUrl()));
      const out = await new Promise<{ code: number | null; text: string }>((res) => {
        const p = spawn(process.execPath, ["example.mjs"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
        let text = "";
        p.stdout.on("data", (d) => (text += d));
        p.stderr.on("data", (d) => (text += d));
        const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
        p.on("exit", (code) => {
          clearTimeout(timer);
          res({ code, text });
        });
      });
      assert.equal(out.code, 0, out.text);
      assert.match(out.text, /connection: connected/);
      assert.match(out.text, /published as #1; members in the room: 1/);
      assert.match(out.text, /connection: closed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await node.stop();
    }
  });
});

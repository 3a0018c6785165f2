/**
 * The client across a cluster's bad days, against real nodes: a drain of the node it is on
 * (it lands on another node, misses nothing, duplicates nothing), and a kill -9 of the room's
 * owner (it stays connected or resumes, and sees every acknowledged message or a gap event).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import WebSocket from "ws";
import { connect, type GatehouseClient, GatehouseError, type PublishResult } from "@gatehouse/client";
import { type GatehouseNode, startCluster, until } from "../harness/node.js";
import { Recorder, contiguity } from "../harness/recorder.js";

/** Publishes `{n}` every `everyMs` until stopped; keeps what was acknowledged and what failed how. */
class Publisher {
  readonly acked = new Map<number, number>(); // n -> seq
  readonly failed = new Map<string, number>();
  private n = 0;
  private stopped = false;
  private loop: Promise<void>;

  constructor(
    readonly client: GatehouseClient,
    readonly room: string,
    everyMs: number,
    readonly tag: string,
  ) {
    this.loop = (async () => {
      const r = client.room(room);
      await r.join();
      while (!this.stopped) {
        const n = ++this.n;
        try {
          const res: PublishResult = await r.publish({ tag, n });
          this.acked.set(n, res.seq);
        } catch (e) {
          const code = (e as GatehouseError).code;
          this.failed.set(code, (this.failed.get(code) ?? 0) + 1);
          if ((e as GatehouseError).retryAfterMs) await new Promise((res) => setTimeout(res, Math.min(1000, (e as GatehouseError).retryAfterMs!)));
        }
        await new Promise((res) => setTimeout(res, everyMs));
      }
    })();
  }

  get count(): number {
    return this.acked.size;
  }

  maxSeq(): number {
    return Math.max(0, ...this.acked.values());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

async function roomOwner(node: GatehouseNode, room: string): Promise<string> {
  const r = await node.admin("GET", `/admin/v1/rooms/${room}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.owner as string;
}

async function moveRoom(node: GatehouseNode, room: string, to: string): Promise<void> {
  const r = await node.admin("POST", `/admin/v1/rooms/${room}/migrate`, { to });
  assert.equal(r.status, 200, `migrate ${room} to ${to}: ${r.status} ${JSON.stringify(r.json)}`);
  assert.equal(await roomOwner(node, room), to);
}

describe("a drain of the node the client is on", () => {
  test("the client waits inside after_ms, lands on another node, resumes, misses nothing and duplicates nothing", async () => {
    const nodes = await startCluster(3, { nodeLines: "drain_jitter_ms = 400\n" });
    const [a, b, c] = nodes as [GatehouseNode, GatehouseNode, GatehouseNode];
    const clients: GatehouseClient[] = [];
    try {
      const room = "chat:drain";
      // The reader starts on node-a (the first URL) and moves on to the next one.
      const reader = connect([a.wsUrl(), b.wsUrl(), c.wsUrl()], { WebSocket });
      clients.push(reader);
      const rec = new Recorder(reader);
      await reader.room(room).join();
      assert.equal(reader.welcome!.node, "node-a");
      // The drained node owns the room too: it moves before the clients are sent away.
      await moveRoom(a, room, "node-a");
      const pubClient = connect(c.wsUrl(), { WebSocket });
      clients.push(pubClient);
      const pub = new Publisher(pubClient, room, 10, "c");
      // The reader publishes too, through the drain (its outbox holds what it sends meanwhile).
      const own = new Publisher(reader, room, 25, "reader");
      await until("messages flowing", 10_000, () => rec.seqs(room).length >= 30);

      const drain = await a.admin("POST", "/admin/v1/nodes/node-a/drain");
      assert.equal(drain.status, 202, JSON.stringify(drain.json));
      await until("the reader to be welcomed by another node", 20_000, () => rec.connected.length >= 2);
      const before = pub.count;
      await until("more messages after the move", 10_000, () => pub.count >= before + 30 && own.count >= 10);
      await pub.stop();
      await own.stop();
      const last = Math.max(pub.maxSeq(), own.maxSeq());
      await until(`the reader to reach seq ${last}`, 10_000, () => rec.lastSeq(room) >= last);

      assert.equal(rec.disconnected[0]!.code, 1012);
      assert.equal(rec.disconnected[0]!.willReconnect, true);
      const re = rec.reconnecting[0]!;
      assert.equal(re.cause, "drain");
      assert.deepEqual(re.window, [0, 400]);
      assert.ok(re.delayMs >= 0 && re.delayMs <= 400, `delay ${re.delayMs}`);
      assert.notEqual(rec.connected[1]!.node, "node-a");
      assert.equal(rec.connected[1]!.resumed, true, "the session resumed: same client id");
      assert.equal(contiguity(rec.seqs(room)), "", "every seq once, in order");
      assert.equal(rec.gaps.length, 0);
      const seen = new Set(rec.seqs(room));
      for (const p of [pub, own]) for (const [n, seq] of p.acked) assert.ok(seen.has(seq), `${p.tag} ${n} (seq ${seq}) delivered`);
      // What the reader published: acknowledged, or (in flight at the close and not shown by the
      // replay) unknown_outcome; never re-sent, so never twice.
      const texts = rec.messages.get(room)!.map((m) => JSON.stringify(m.data));
      assert.equal(new Set(texts).size, texts.length, "no message twice");
      for (const code of own.failed.keys()) assert.equal(code, "unknown_outcome", JSON.stringify([...own.failed]));
      console.log(
        `drain: reader moved node-a -> ${rec.connected[1]!.node} after ${re.delayMs} ms (window ${re.window}); ` +
          `${rec.seqs(room).length} messages, 0 lost, 0 duplicated; reader's publishes: ${own.count} acked, ${JSON.stringify(Object.fromEntries(own.failed))} failed; ` +
          `duplicates dropped by the client: ${reader.stats.duplicatesDropped}`,
      );
    } finally {
      for (const cl of clients) cl.close();
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
});

describe("kill -9 of the room's owner", () => {
  test("a client on a survivor stays connected, one on the dead node resumes; each sees every acknowledged message or a gap", async () => {
    const nodes = await startCluster(3);
    const clients: GatehouseClient[] = [];
    try {
      const room = "chat:crash";
      // The room is created by a first join, on its rendezvous owner, with a replica on the runner-up.
      const probe = connect(nodes[0]!.wsUrl(), { WebSocket });
      clients.push(probe);
      await probe.room(room).join();
      const ownerName = await roomOwner(nodes[0]!, room);
      const owner = nodes.find((n) => n.name === ownerName)!;
      const [survivor, third] = nodes.filter((n) => n !== owner) as [GatehouseNode, GatehouseNode];
      await until("the room to have a replica", 10_000, async () => (await owner.admin("GET", `/admin/v1/rooms/${room}`)).json.backup);
      const epoch0 = (await owner.admin("GET", `/admin/v1/rooms/${room}`)).json.epoch as string;
      probe.close();

      const onOwner = connect([owner.wsUrl(), survivor.wsUrl(), third.wsUrl()], { WebSocket, backoff: { initialMs: 100, maxMs: 1000 } });
      const onSurvivor = connect(survivor.wsUrl(), { WebSocket });
      const pubClient = connect(third.wsUrl(), { WebSocket });
      clients.push(onOwner, onSurvivor, pubClient);
      const observers = [
        ["on the owner", new Recorder(onOwner), onOwner],
        ["on a survivor", new Recorder(onSurvivor), onSurvivor],
        ["publishing", new Recorder(pubClient), pubClient],
      ] as const;
      await onOwner.room(room).join();
      await onSurvivor.room(room).join();
      assert.equal(onOwner.welcome!.node, ownerName);
      const pub = new Publisher(pubClient, room, 10, "p");
      await until("messages flowing", 10_000, () => observers.every(([, rec]) => rec.seqs(room).length >= 30));

      const killedAt = Date.now();
      owner.kill9();
      await owner.waitExit(10_000);
      await until("the client of the dead node to reconnect", 20_000, () => observers[0][1].connected.length >= 2);
      const before = pub.count;
      await until("publishes acknowledged again", 20_000, () => pub.count >= before + 30);
      const backAfter = Date.now() - killedAt;
      await pub.stop();
      // Where the room ends: every observer must get there.
      const fin = (await survivor.admin("GET", `/admin/v1/rooms/${room}`)).json as { epoch: string; seq: number };
      const summary: string[] = [];
      for (const [name, rec, client] of observers) {
        await until(`the client ${name} to reach ${fin.epoch}/${fin.seq}`, 15_000, () => {
          const p = client.room(room).position;
          return p !== undefined && p.epoch === fin.epoch && p.seq === fin.seq;
        });
        const msgs = rec.messages.get(room)!;
        const keys = msgs.map((m) => `${m.epoch}/${m.seq}`);
        assert.equal(new Set(keys).size, keys.length, `${name}: no (epoch, seq) twice`);
        const ns = msgs.map((m) => (m.data as { n?: number }).n).filter((n) => n !== undefined);
        assert.equal(new Set(ns).size, ns.length, `${name}: no message twice`);
        if (rec.gaps.length === 0) {
          assert.equal(fin.epoch, epoch0, `${name}: no gap event, so the room must have kept its epoch`);
          assert.equal(contiguity(rec.seqs(room)), "", `${name}: every seq once, in order`);
          const seen = new Set(ns);
          for (const [n, seq] of pub.acked) assert.ok(seen.has(n), `${name}: acknowledged message ${n} (seq ${seq}) delivered`);
        } else {
          // What could not be recovered is announced; after the last gap, everything, in order.
          const g = rec.gaps.at(-1)!;
          assert.equal(g.room, room);
          assert.equal(g.after.epoch, fin.epoch);
          const afterGap = msgs.filter((m) => m.epoch === fin.epoch && m.seq > g.after.seq).map((m) => m.seq);
          assert.equal(contiguity(afterGap, g.after.seq + 1), "", `${name}: after the gap every seq once, in order`);
        }
        summary.push(`${name}: ${msgs.length} messages, ${rec.gaps.length ? `gaps ${JSON.stringify(rec.gaps.map((x) => x.reason))}` : "no gap"}, ${rec.disconnected.length} disconnects`);
      }
      const [recOwner, recSurvivor] = [observers[0][1], observers[1][1]];
      assert.equal(recSurvivor.disconnected.length, 0, "the client on a survivor stayed connected");
      assert.equal(recOwner.disconnected[0]!.code, 1006);
      assert.equal(recOwner.reconnecting[0]!.cause, "backoff");
      assert.notEqual(recOwner.connected[1]!.node, ownerName);
      console.log(
        `kill -9 of the owner (${ownerName}): publishes acknowledged again ${backAfter} ms after the kill; failures meanwhile ${JSON.stringify(Object.fromEntries(pub.failed))}; ` +
          `epoch ${fin.epoch === epoch0 ? "kept" : "changed"}; the client on the dead node resumed ${recOwner.connected[1]!.resumed} on ${recOwner.connected[1]!.node}; ${summary.join("; ")}`,
      );
    } finally {
      for (const cl of clients) cl.close();
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
});

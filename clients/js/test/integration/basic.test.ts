/**
 * The client against one real node: join, publish, history, presence (and its pages), the async
 * iterator, request errors with retryAfterMs, and the outbox across a node restart.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { connect, GatehouseError, type GatehouseClient, type MessageFrame } from "@gatehouse/client";
import { GatehouseNode, freePort, until } from "../harness/node.js";
import { Recorder, contiguity } from "../harness/recorder.js";

describe("one node", () => {
  let node: GatehouseNode;
  const clients: GatehouseClient[] = [];
  const open = (opts: Parameters<typeof connect>[1] = {}) => {
    const c = connect(node.wsUrl(), { WebSocket, ...opts });
    clients.push(c);
    return c;
  };

  before(async () => {
    node = await GatehouseNode.start({ toml: "[limits]\nmsgs_per_sec = 50\nburst = 60\n" });
  });
  after(async () => {
    for (const c of clients) c.close();
    await node.stop();
  });

  test("join, publish, presence and history; every member gets each message once, in order", async () => {
    const a = open();
    const b = open();
    const ra = new Recorder(a);
    const rb = new Recorder(b);
    const roomA = a.room<{ n: number }>("chat:basic");
    const roomB = b.room<{ n: number }>("chat:basic");
    const joinedA = await roomA.join({ presence: true });
    assert.equal(joinedA.room, "chat:basic");
    assert.equal(joinedA.seq, 0);
    assert.match(joinedA.epoch, /^[0-9a-f]{8}$/);
    const memberEvents: string[] = [];
    roomA.on("presence_join", (p) => memberEvents.push(`join ${p.client}`));
    await roomB.join();
    await until("a to see b join", 10_000, () => memberEvents.length === 1);
    assert.equal(memberEvents[0], `join ${b.welcome!.client}`);
    await until("a's member list to hold both", 10_000, () => roomA.members.length === 2);

    const acks = [];
    for (let n = 1; n <= 20; n++) acks.push(await roomB.publish({ n }));
    assert.deepEqual(acks.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    await until("both to get 20 messages", 10_000, () => ra.seqs("chat:basic").length === 20 && rb.seqs("chat:basic").length === 20);
    assert.equal(contiguity(ra.seqs("chat:basic")), "");
    assert.equal(contiguity(rb.seqs("chat:basic")), "");
    assert.deepEqual((ra.messages.get("chat:basic") as MessageFrame<{ n: number }>[]).map((m) => m.data.n), acks.map((_, i) => i + 1));
    assert.equal(ra.messages.get("chat:basic")![0]!.from.client, b.welcome!.client);

    const p = await roomA.presence();
    assert.equal(p.count, 2);
    assert.deepEqual(p.members.map((m) => m.client).sort(), [a.welcome!.client, b.welcome!.client].sort());

    const h = await roomA.history({ since: { seq: 15, epoch: joinedA.epoch }, limit: 10 });
    assert.equal(h.recovered, true);
    assert.deepEqual(h.messages.map((m) => m.seq), [16, 17, 18, 19, 20]);
    const latest = await roomA.history({ limit: 3 });
    assert.deepEqual(latest.messages.map((m) => m.seq), [18, 19, 20]);

    await roomB.leave();
    await until("a to see b leave", 10_000, () => roomA.members.length === 1);
    await assert.rejects(roomB.publish({ n: 99 }), (e: GatehouseError) => e.code === "not_joined");
    assert.equal(ra.gaps.length + rb.gaps.length, 0);
    assert.equal(a.stats.duplicatesDropped, 0);
  });

  test("presence in pages: presence() follows the cursor to every member; presencePages() yields each page", async () => {
    const members = [open(), open(), open(), open(), open()];
    for (const c of members) await c.room("chat:pages").join();
    const ids = members.map((c) => c.welcome!.client).sort();
    const room = members[0]!.room("chat:pages");
    const all = await room.presence({ limit: 2 });
    assert.equal(all.count, 5);
    assert.deepEqual(all.members.map((m) => m.client), ids);
    const pages = [];
    for await (const page of room.presencePages({ limit: 2 })) pages.push(page);
    assert.deepEqual(pages.map((p) => p.count), [2, 2, 1]);
    // Cursors are opaque: a string on every page but the last.
    assert.deepEqual(pages.map((p) => (p.next === null ? null : typeof p.next)), ["string", "string", null]);
    assert.deepEqual(pages.flatMap((p) => p.members.map((m) => m.client)), ids);
    // Without a limit, one page holds a room this small.
    const one = [];
    for await (const page of room.presencePages()) one.push(page);
    assert.deepEqual(one.map((p) => [p.count, p.next]), [[5, null]]);
  });

  test("a join with last replays the latest messages before live ones; messages() iterates them", async () => {
    const pub = open();
    const room = pub.room("chat:last");
    await room.join();
    for (let n = 1; n <= 5; n++) await room.publish({ n });
    const late = open();
    const lateRoom = late.room<{ n: number }>("chat:last");
    const it = lateRoom.messages();
    const joined = await lateRoom.join({ last: 3 });
    assert.equal(joined.replayed, 3);
    await room.publish({ n: 6 });
    const got: number[] = [];
    for await (const m of it) {
      got.push(m.seq);
      if (got.length === 4) break;
    }
    assert.deepEqual(got, [3, 4, 5, 6]);
  });

  test("errors: rate_limited carries retryAfterMs; bad input is refused before it is sent", async () => {
    const c = open();
    const room = c.room("chat:limits");
    await room.join();
    const results = await Promise.allSettled(Array.from({ length: 120 }, (_, n) => room.publish({ n })));
    const limited = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as GatehouseError);
    assert.ok(limited.length > 0, "some of 120 publishes at once are over a burst of 60");
    for (const e of limited) {
      assert.equal(e.code, "rate_limited");
      assert.ok(typeof e.retryAfterMs === "number" && e.retryAfterMs >= 1, `retryAfterMs ${e.retryAfterMs}`);
    }
    assert.throws(() => c.room("bad room name!"), (e: GatehouseError) => e.code === "bad_request");
    await assert.rejects(room.publish(null as never), (e: GatehouseError) => e.code === "bad_request");
    await assert.rejects(room.publish({ big: "x".repeat(70_000) }), (e: GatehouseError) => e.code === "payload_too_large");
    await assert.rejects(room.join({ last: -1 }), (e: GatehouseError) => e.code === "bad_request");
    assert.throws(() => connect("http://127.0.0.1:1/ws", { WebSocket }), (e: GatehouseError) => e.code === "bad_request");
    assert.throws(() => connect(node.wsUrl(), { WebSocket, tokn: "x" } as never), /unknown option 'tokn'/);
    // The connection survived all of it.
    await until("a ping to pass the rate limit again", 10_000, async () => {
      try {
        await c.request("ping");
        return true;
      } catch (e) {
        return (e as GatehouseError).code === "rate_limited" ? false : Promise.reject(e);
      }
    });
    assert.equal(c.state, "connected");
  });
});

describe("a node restart", () => {
  test("publishes made while the node is down wait in the outbox and go out after the rejoin; the new epoch is a gap", async () => {
    const port = await freePort();
    const node = await GatehouseNode.start({ publicPort: port });
    const c = connect(node.wsUrl(), { WebSocket, backoff: { initialMs: 50, maxMs: 300 }, outbox: { maxMessages: 5 } });
    try {
      const r = new Recorder(c);
      const room = c.room("chat:outbox");
      const first = await room.join();
      await room.publish({ n: 1 });
      await until("message 1", 10_000, () => r.seqs("chat:outbox").length === 1);
      node.kill9();
      await node.waitExit(10_000);
      await until("the client to notice", 10_000, () => c.state === "reconnecting");
      const queued = [2, 3, 4, 5, 6].map((n) => room.publish({ n }));
      await assert.rejects(room.publish({ n: 7 }), (e: GatehouseError) => e.code === "outbox_full");
      assert.equal(c.outboxSize, 5);
      assert.ok(r.errors.some((e) => e.code === "outbox_full"), "outbox overflow is reported as an error event");
      await node.restart();
      const acks = await Promise.all(queued);
      // The room was re-created on the restarted node: a new epoch, seqs from 1 again.
      assert.deepEqual(acks.map((a) => a.seq), [1, 2, 3, 4, 5]);
      assert.equal(r.gaps.length, 1);
      assert.equal(r.gaps[0]!.reason, "epoch_changed");
      assert.equal(r.gaps[0]!.before.epoch, first.epoch);
      assert.equal(r.gaps[0]!.before.seq, 1);
      await until("the queued messages to come back", 10_000, () => r.seqs("chat:outbox").length === 6);
      assert.deepEqual(
        r.messages.get("chat:outbox")!.map((m) => (m.data as { n: number }).n),
        [1, 2, 3, 4, 5, 6],
      );
      assert.ok(r.reconnecting.every((e) => e.cause === "backoff"), JSON.stringify(r.reconnecting));
      assert.equal(r.disconnected[0]!.code, 1006);
      assert.equal(c.outboxSize, 0);
    } finally {
      c.close();
      await node.stop();
    }
  });
});

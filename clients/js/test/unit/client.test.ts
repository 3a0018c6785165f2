/**
 * The client's logic with fake timers and a scripted transport: the reconnect contract per close
 * code, session resume and rejoin bookkeeping, dedupe, gaps, the outbox, requests, the
 * dispatcher, and presence read in pages.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";
import { connect, type ConnectOptions, GatehouseError, type GatehouseClient } from "@gatehouse/client";
import { type FakeSocket, fakeWebSocket, flush } from "../harness/fake-socket.js";
import { Recorder } from "../harness/recorder.js";

/** Outcome not under test here (the client may be closed before it settles). */
function quiet(p: Promise<unknown>): void {
  p.catch(() => {});
}

const EPOCH = "3f9a1c07";
const ME = "c_ME00000000000000";

function setup(options: ConnectOptions = {}, url: string | string[] = "ws://gw.test/ws") {
  const fake = fakeWebSocket();
  const client = connect(url, { WebSocket: fake.WebSocket, random: () => 0.5, ...options });
  const rec = new Recorder(client);
  return { fake, client, rec };
}

/** Joins `room` on socket `s` with the given join result; returns the join frame. */
async function joinOn(s: FakeSocket, room: string, result: Record<string, unknown>) {
  await flush();
  const j = s.sent.filter((f) => f.op === "join" && f.room === room).at(-1)!;
  assert.ok(j, `a join for ${room} was sent`);
  s.reply(j, { room, epoch: EPOCH, members: 1, seq: 0, ...result });
  await flush();
  return j;
}

let clients: GatehouseClient[] = [];
beforeEach(() => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  clients = [];
});
afterEach(() => {
  for (const c of clients) c.close();
  mock.timers.reset();
});
function track<T extends { client: GatehouseClient }>(x: T): T {
  clients.push(x.client);
  return x;
}

describe("connecting", () => {
  test("offers gatehouse.v1 and the token as a subprotocol entry; ?token= with tokenTransport query", () => {
    const { fake } = track(setup({ token: "a.b.c" }));
    assert.deepEqual(fake.latest().protocols, ["gatehouse.v1", "token.a.b.c"]);
    assert.equal(fake.latest().url, "ws://gw.test/ws");
    const q = track(setup({ token: "a.b.c", tokenTransport: "query" }, "ws://gw.test/ws?x=1"));
    assert.deepEqual(q.fake.latest().protocols, ["gatehouse.v1"]);
    assert.equal(q.fake.latest().url, "ws://gw.test/ws?x=1&token=a.b.c");
  });

  test("states: connecting, connected; connected event with the welcome", () => {
    const { fake, client, rec } = track(setup());
    assert.equal(client.state, "connecting");
    fake.latest().welcome(ME);
    assert.equal(client.state, "connected");
    assert.deepEqual(rec.states, ["connected"]);
    assert.equal(rec.connected[0]!.client, ME);
    assert.equal(rec.connected[0]!.resumed, false);
    assert.equal(rec.connected[0]!.reconnects, 0);
  });

  test("no welcome within connectTimeoutMs: the attempt is dropped and retried with backoff", () => {
    const { fake, rec } = track(setup({ connectTimeoutMs: 2000 }));
    fake.latest().open();
    mock.timers.tick(1999);
    assert.equal(fake.sockets.length, 1);
    mock.timers.tick(1);
    assert.equal(rec.reconnecting.length, 1);
    assert.equal(rec.reconnecting[0]!.cause, "backoff");
    assert.equal(rec.reconnecting[0]!.delayMs, 250); // attempt 0: 0.5 × 500
    mock.timers.tick(250);
    assert.equal(fake.sockets.length, 2);
  });

  test("whenConnected waits for the welcome; stats count the time without a connection", async () => {
    const { fake, client } = track(setup());
    const ready = client.whenConnected();
    fake.latest().welcome(ME);
    await ready;
    await client.whenConnected();
    mock.timers.tick(1000);
    fake.latest().serverClose(1006);
    mock.timers.tick(250);
    mock.timers.tick(750);
    assert.equal(client.stats.disconnectedMs, 1000, "the current outage counts");
    fake.latest().welcome(ME);
    mock.timers.tick(5000);
    assert.deepEqual(client.stats, { connects: 2, disconnects: 1, delivered: 0, duplicatesDropped: 0, gaps: 0, disconnectedMs: 1000 });
    client.close();
    await assert.rejects(client.whenConnected(), (e: GatehouseError) => e.code === "closed");
  });

  test("whenConnected rejects after its timeout, and when the client stops first", async () => {
    const { fake, client } = track(setup());
    const t = client.whenConnected(1000);
    mock.timers.tick(1000);
    await assert.rejects(t, (e: GatehouseError) => e.code === "timeout");
    const w = client.whenConnected();
    fake.latest().open();
    fake.latest().serverClose(4003, "kicked", { reconnect: false });
    await assert.rejects(w, (e: GatehouseError) => e.code === "closed");
  });

  test("several URLs are tried in turn", () => {
    const { fake } = track(setup({}, ["ws://a.test/ws", "ws://b.test/ws", "ws://c.test/ws"]));
    const urls = () => fake.sockets.map((s) => new URL(s.url).host);
    fake.latest().fail();
    mock.timers.tick(1000);
    fake.latest().fail();
    mock.timers.tick(2000);
    fake.latest().fail();
    mock.timers.tick(4000);
    assert.deepEqual(urls(), ["a.test", "b.test", "c.test", "a.test"]);
  });
});

describe("the reconnect contract", () => {
  for (const [code, farewell] of [
    [1000, undefined],
    [4003, { reconnect: false }],
    [1008, { reconnect: false }],
    [4500, { reconnect: false }],
  ] as const) {
    test(`${code}${farewell ? " with disconnect{reconnect:false}" : ""} stops: no reconnect, state closed`, async () => {
      const { fake, client, rec } = track(setup());
      fake.latest().welcome(ME);
      const room = client.room("r");
      const joined = room.join();
      await joinOn(fake.latest(), "r", {});
      await joined;
      const pending = client.request("ping");
      fake.latest().serverClose(code, "bye", farewell);
      await assert.rejects(pending, (e: GatehouseError) => e.code === "connection_lost");
      assert.equal(client.state, "closed");
      assert.deepEqual(rec.disconnected, [{ code, reason: "bye", willReconnect: false }]);
      mock.timers.tick(120_000);
      assert.equal(fake.sockets.length, 1, "no new connection");
      await assert.rejects(room.publish({}), (e: GatehouseError) => e.code === "closed");
    });
  }

  test("1012 after a reconnect frame waits a random time inside after_ms, then resumes with ?session=", () => {
    const { fake, rec } = track(setup({ random: () => 0.25 }));
    fake.latest().welcome(ME, "tok-1");
    fake.latest().receive({ op: "reconnect", reason: "node draining", after_ms: [1000, 3000] });
    fake.latest().serverClose(1012, "node draining", { reconnect: true });
    assert.deepEqual(rec.reconnecting, [{ attempt: 1, delayMs: 1500, cause: "drain", code: 1012, window: [1000, 3000], url: "ws://gw.test/ws" }]);
    assert.equal(rec.disconnected[0]!.willReconnect, true);
    mock.timers.tick(1499);
    assert.equal(fake.sockets.length, 1);
    mock.timers.tick(1);
    assert.equal(fake.sockets.length, 2);
    assert.equal(fake.latest().url, "ws://gw.test/ws?session=tok-1");
    fake.latest().welcome(ME, "tok-2");
    assert.equal(rec.connected[1]!.resumed, true);
    assert.equal(rec.connected[1]!.reconnects, 1);
  });

  test("a drain's hint holds even when the close frame is lost (1006 after reconnect + disconnect)", () => {
    const { fake, rec } = track(setup({ random: () => 1 }));
    fake.latest().welcome(ME);
    fake.latest().receive({ op: "reconnect", reason: "node draining", after_ms: [0, 800] });
    fake.latest().receive({ op: "disconnect", code: 1012, reason: "node draining", reconnect: true });
    fake.latest().fail();
    assert.equal(rec.disconnected[0]!.code, 1012);
    assert.equal(rec.reconnecting[0]!.cause, "drain");
    assert.equal(rec.reconnecting[0]!.delayMs, 800);
  });

  test("1012 without a reconnect frame uses [0, drainWindowMs]", () => {
    const { fake, rec } = track(setup({ random: () => 1, drainWindowMs: 2000 }));
    fake.latest().welcome(ME);
    fake.latest().serverClose(1012, "node draining");
    assert.deepEqual(rec.reconnecting[0]!.window, [0, 2000]);
    assert.equal(rec.reconnecting[0]!.delayMs, 2000);
  });

  for (const code of [1001, 1006, 4008, 4009, 1011, 1002]) {
    test(`${code} backs off with full jitter, growing per failed attempt, reset by a welcome`, () => {
      const { fake, rec } = track(setup({ random: () => 0.999999, backoff: { initialMs: 100, maxMs: 1000, factor: 2 } }));
      fake.latest().welcome(ME);
      fake.latest().serverClose(code, "x");
      // Every following attempt fails before the upgrade.
      for (let i = 0; i < 5; i++) {
        mock.timers.tick(rec.reconnecting.at(-1)!.delayMs);
        fake.latest().fail();
      }
      assert.deepEqual(rec.reconnecting.map((r) => r.delayMs), [100, 200, 400, 800, 1000, 1000]);
      assert.deepEqual(rec.reconnecting.map((r) => r.attempt), [1, 2, 3, 4, 5, 6]);
      assert.ok(rec.reconnecting.every((r) => r.cause === "backoff" && r.code === (r.attempt === 1 ? code : 1006)));
      assert.equal(rec.disconnected.length, 1, "failed handshakes are not disconnects");
      mock.timers.tick(1000);
      fake.latest().welcome(ME);
      fake.latest().serverClose(code, "again");
      assert.equal(rec.reconnecting.at(-1)!.delayMs, 100, "a welcome resets the backoff");
      assert.equal(rec.reconnecting.at(-1)!.attempt, 1);
    });
  }

  test("4001 asks getToken for a new token and reconnects at once; a second 4001 soon after backs off", async () => {
    let n = 0;
    const getToken = mock.fn(() => `h.tok${++n}.s`);
    const { fake, rec, client } = track(setup({ getToken }));
    await flush();
    assert.equal(getToken.mock.callCount(), 1);
    assert.deepEqual(fake.latest().protocols, ["gatehouse.v1", "token.h.tok1.s"]);
    fake.latest().welcome(ME, "s1");
    fake.latest().serverClose(4001, "token expired", { reconnect: true });
    assert.deepEqual(rec.reconnecting[0], { attempt: 1, delayMs: 0, cause: "token", code: 4001, url: "ws://gw.test/ws" });
    mock.timers.tick(0);
    await flush();
    assert.equal(getToken.mock.callCount(), 2);
    assert.deepEqual(fake.latest().protocols, ["gatehouse.v1", "token.h.tok2.s"]);
    assert.equal(fake.latest().url, "ws://gw.test/ws?session=s1");
    fake.latest().welcome(ME, "s2");
    assert.equal(client.state, "connected");
    fake.latest().serverClose(4001, "token expired", { reconnect: true });
    assert.equal(rec.reconnecting.at(-1)!.cause, "token");
    assert.equal(rec.reconnecting.at(-1)!.delayMs, 250, "a 4001 loop backs off");
  });

  test("4001 without getToken stops with token_expired", () => {
    const { fake, rec, client } = track(setup({ token: "h.p.s" }));
    fake.latest().welcome(ME);
    fake.latest().serverClose(4001, "token expired", { reconnect: true });
    assert.equal(client.state, "closed");
    assert.equal(rec.errors[0]!.code, "token_expired");
    assert.equal(rec.disconnected[0]!.willReconnect, false);
  });

  test("a token whose exp is near is replaced before connecting; a getToken failure backs off and retries", async () => {
    const now = Date.now() / 1000;
    const jwt = (exp: number) => `h.${Buffer.from(JSON.stringify({ sub: "u", exp })).toString("base64url")}.s`;
    let fail = true;
    const getToken = mock.fn(async () => {
      if (fail) throw new Error("auth server down");
      return jwt(now + 3600);
    });
    const { fake, rec } = track(setup({ token: jwt(now + 2), getToken }));
    await flush();
    assert.equal(getToken.mock.callCount(), 1, "exp within tokenRefreshSkewMs");
    assert.equal(fake.sockets.length, 0);
    assert.equal(rec.errors[0]!.code, "token_refresh_failed");
    assert.equal(rec.reconnecting[0]!.cause, "backoff");
    fail = false;
    mock.timers.tick(rec.reconnecting[0]!.delayMs);
    await flush();
    assert.equal(fake.sockets.length, 1);
    assert.equal(fake.latest().protocols[1], `token.${jwt(now + 3600)}`);
  });

  test("a getToken that never answers is given up after connectTimeoutMs; a token a subprotocol cannot carry is refused", async () => {
    const { fake, rec } = track(setup({ getToken: () => new Promise<string>(() => {}), connectTimeoutMs: 3000 }));
    await flush();
    mock.timers.tick(2999);
    await flush();
    assert.equal(rec.errors.length, 0);
    mock.timers.tick(1);
    await flush();
    assert.equal(rec.errors[0]!.code, "token_refresh_failed");
    assert.match(rec.errors[0]!.message, /no token within 3000 ms/);
    assert.equal(rec.reconnecting[0]!.cause, "backoff");
    assert.equal(fake.sockets.length, 0);
    const ws = fakeWebSocket().WebSocket;
    assert.throws(() => connect("ws://gw.test/ws", { WebSocket: ws, token: "has space" }), (e: GatehouseError) => e.code === "bad_request" && /subprotocol/.test(e.message));
    assert.throws(() => connect("ws://gw.test/ws", { WebSocket: ws, token: "" }), (e: GatehouseError) => e.code === "bad_request");
    const q = track(setup({ token: "opaque token", tokenTransport: "query" }));
    assert.equal(q.fake.latest().url, "ws://gw.test/ws?token=opaque+token");
  });

  test("three failed handshakes in a row fetch a new token (it may have been revoked)", async () => {
    const getToken = mock.fn(() => "h.p.s");
    const { fake } = track(setup({ getToken }));
    await flush();
    for (let i = 0; i < 3; i++) {
      fake.latest().fail();
      mock.timers.tick(30_000);
      await flush();
    }
    assert.equal(getToken.mock.callCount(), 2);
  });
});

describe("rooms across a reconnect", () => {
  test("rejoin with since = the last delivered position, presence kept; replayed duplicates are dropped", async () => {
    const { fake, client, rec } = track(setup());
    fake.latest().welcome(ME, "s1");
    const room = client.room("chat:x");
    const joined = room.join({ presence: true });
    const j1 = await joinOn(fake.latest(), "chat:x", { seq: 10 });
    assert.deepEqual(j1, { id: j1.id, op: "join", room: "chat:x", presence: true, presence_batch: true });
    assert.equal((await joined).seq, 10);
    for (const seq of [11, 12, 13]) fake.latest().message("chat:x", seq, EPOCH, { seq });
    fake.latest().serverClose(1006, "");
    mock.timers.tick(250);
    const s2 = fake.latest();
    assert.equal(s2.url, "ws://gw.test/ws?session=s1");
    s2.welcome(ME, "s2");
    const j2 = s2.last("join");
    assert.deepEqual(j2, { id: j2.id, op: "join", room: "chat:x", presence: true, presence_batch: true, since: { seq: 13, epoch: EPOCH } });
    s2.reply(j2, { room: "chat:x", epoch: EPOCH, seq: 15, members: 2, recovered: true, replayed: 2 });
    // A node may replay what the client already has: dropped, never delivered twice.
    for (const seq of [12, 13, 14, 15, 16]) s2.message("chat:x", seq, EPOCH, { seq });
    assert.deepEqual(rec.seqs("chat:x"), [11, 12, 13, 14, 15, 16]);
    assert.equal(client.stats.duplicatesDropped, 2);
    assert.equal(rec.gaps.length, 0);
    assert.deepEqual(room.position, { seq: 16, epoch: EPOCH });
  });

  test("recovered:false is a gap event with what is known; delivery goes on after the room's seq", async () => {
    const { fake, client, rec } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("chat:y");
    quiet(room.join());
    await joinOn(fake.latest(), "chat:y", { seq: 3 });
    fake.latest().message("chat:y", 4, EPOCH, {});
    fake.latest().serverClose(4008, "slow consumer: outbound queue overflow", { reconnect: true });
    mock.timers.tick(250);
    fake.latest().welcome(ME);
    const j = fake.latest().last("join");
    fake.latest().reply(j, { room: "chat:y", epoch: EPOCH, seq: 2000, members: 1, recovered: false, replayed: 0 });
    assert.deepEqual(rec.gaps, [{ room: "chat:y", reason: "not_recovered", before: { seq: 4, epoch: EPOCH }, after: { seq: 2000, epoch: EPOCH }, missed: 1996 }]);
    fake.latest().message("chat:y", 2001, EPOCH, {});
    assert.deepEqual(rec.seqs("chat:y"), [4, 2001]);
    assert.equal(client.stats.gaps, 1);
  });

  test("an epoch change is a gap: on a rejoin, and under a live connection (room re-created)", async () => {
    const { fake, client, rec } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("chat:z");
    const gaps: string[] = [];
    room.on("gap", (g) => gaps.push(g.reason));
    quiet(room.join());
    await joinOn(fake.latest(), "chat:z", { seq: 7 });
    fake.latest().message("chat:z", 8, EPOCH, {});
    // Live: the owner died with its replica; the room comes back with a new epoch.
    fake.latest().message("chat:z", 1, "00000002", {});
    fake.latest().message("chat:z", 2, "00000002", {});
    // A late frame of the old epoch is not delivered.
    fake.latest().message("chat:z", 9, EPOCH, {});
    assert.deepEqual(rec.messages.get("chat:z")!.map((m) => `${m.epoch}/${m.seq}`), [`${EPOCH}/8`, "00000002/1", "00000002/2"]);
    assert.deepEqual(rec.gaps[0], { room: "chat:z", reason: "epoch_changed", before: { seq: 8, epoch: EPOCH }, after: { seq: 0, epoch: "00000002" } });
    // And on a rejoin.
    fake.latest().serverClose(1006);
    mock.timers.tick(250);
    fake.latest().welcome(ME);
    const j = fake.latest().last("join");
    assert.deepEqual(j.since, { seq: 2, epoch: "00000002" });
    fake.latest().reply(j, { room: "chat:z", epoch: "00000003", seq: 0, members: 1, recovered: false, replayed: 0 });
    assert.deepEqual(gaps, ["epoch_changed", "epoch_changed"]);
    assert.deepEqual(rec.gaps[1], { room: "chat:z", reason: "epoch_changed", before: { seq: 2, epoch: "00000002" }, after: { seq: 0, epoch: "00000003" }, missed: undefined });
    fake.latest().message("chat:z", 1, "00000003", {});
    assert.equal(rec.seqs("chat:z").at(-1), 1);
  });

  test("a snapshot newer than the position moves it; a seq hole is reported", async () => {
    const { fake, client, rec } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("board:1");
    const snaps: number[] = [];
    room.on("snapshot", (s) => snaps.push(s.skipped));
    quiet(room.join());
    await joinOn(fake.latest(), "board:1", { seq: 5 });
    fake.latest().receive({ op: "snapshot", room: "board:1", seq: 3, epoch: EPOCH, data: { v: 1 } });
    fake.latest().serverClose(1006);
    mock.timers.tick(250);
    fake.latest().welcome(ME);
    const j = fake.latest().last("join");
    fake.latest().reply(j, { room: "board:1", epoch: EPOCH, seq: 12, members: 1, recovered: true, replayed: 2 });
    fake.latest().receive({ op: "snapshot", room: "board:1", seq: 10, epoch: EPOCH, data: { v: 2 } });
    fake.latest().message("board:1", 11, EPOCH, {});
    fake.latest().message("board:1", 12, EPOCH, {});
    fake.latest().message("board:1", 14, EPOCH, {});
    assert.deepEqual(snaps, [0, 5]);
    assert.deepEqual(room.snapshot?.data, { v: 2 });
    assert.deepEqual(rec.seqs("board:1"), [11, 12, 14]);
    assert.deepEqual(rec.gaps, [{ room: "board:1", reason: "seq_gap", before: { seq: 12, epoch: EPOCH }, after: { seq: 13, epoch: EPOCH }, missed: 1 }]);
  });

  test("a replay that never reaches the announced seq ends as a gap after requestTimeoutMs", async () => {
    const { fake, client, rec } = track(setup({ requestTimeoutMs: 3000 }));
    fake.latest().welcome(ME);
    quiet(client.room("r").join());
    await joinOn(fake.latest(), "r", { seq: 1 });
    fake.latest().serverClose(1006);
    mock.timers.tick(250);
    fake.latest().welcome(ME);
    fake.latest().reply(fake.latest().last("join"), { room: "r", epoch: EPOCH, seq: 5, members: 1, recovered: true, replayed: 4 });
    fake.latest().message("r", 2, EPOCH, {});
    mock.timers.tick(3000);
    assert.deepEqual(rec.gaps, [{ room: "r", reason: "replay_incomplete", before: { seq: 2, epoch: EPOCH }, after: { seq: 5, epoch: EPOCH }, missed: 3 }]);
  });

  test("a rejoin refused as unavailable is retried after retry_after_ms; forbidden drops the room", async () => {
    const { fake, client, rec } = track(setup());
    fake.latest().welcome(ME);
    const a = client.room("a");
    const b = client.room("b");
    quiet(a.join());
    quiet(b.join());
    await joinOn(fake.latest(), "a", {});
    await joinOn(fake.latest(), "b", {});
    fake.latest().serverClose(1006);
    mock.timers.tick(250);
    const s = fake.latest();
    s.welcome(ME);
    s.replyError(s.sent.find((f) => f.room === "a")!, "unavailable", "room moving", 1000);
    s.replyError(s.sent.find((f) => f.room === "b")!, "forbidden", "not in the token's rooms");
    assert.deepEqual(rec.errors.map((e) => e.code), ["unavailable", "forbidden"]);
    assert.equal(b.isWanted, false);
    mock.timers.tick(999);
    assert.equal(s.ops("join").length, 2);
    mock.timers.tick(1);
    assert.equal(s.ops("join").length, 3);
    s.reply(s.last("join"), { room: "a", epoch: EPOCH, seq: 0, members: 1, recovered: true });
    assert.equal(a.isJoined, true);
  });

  test("members: the presence reply is the base, events that crossed it apply again", async () => {
    const { fake, client } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("p");
    const lists: string[][] = [];
    room.on("members", (m) => lists.push(m.map((x) => x.client)));
    quiet(room.join({ presence: true }));
    await joinOn(fake.latest(), "p", {});
    const s = fake.latest();
    const req = s.last("presence");
    // B joins and C leaves while the request is out; the reply was computed before either.
    s.receive({ op: "presence_join", room: "p", client: "c_B", user: "u-b" });
    s.receive({ op: "presence_leave", room: "p", client: "c_C", user: "u-c" });
    s.reply(req, { room: "p", count: 2, members: [{ client: "c_C", user: "u-c" }, { client: ME, user: "u-1" }] });
    await flush();
    assert.deepEqual(room.members.map((m) => m.client), ["c_B", ME]);
    assert.deepEqual(lists.at(-1), ["c_B", ME]);
    // Later events apply as they come.
    s.receive({ op: "presence_leave", room: "p", client: "c_B", user: "u-b" });
    assert.deepEqual(room.members.map((m) => m.client), [ME]);
  });

  test("presence: the join asks for batches, and a batch's events apply one by one, in order", async () => {
    const { fake, client } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("p");
    const seen: string[] = [];
    client.on("presence_join", (p) => seen.push(`+${p.client}`));
    client.on("presence_leave", (p) => seen.push(`-${p.client}`));
    quiet(room.join({ presence: true }));
    const s = fake.latest();
    const join = s.last("join");
    assert.equal(join.presence, true);
    assert.equal(join.presence_batch, true);
    await joinOn(s, "p", {});
    s.reply(s.last("presence"), { room: "p", count: 1, members: [{ client: ME, user: "u-1" }] });
    await flush();
    s.receive({
      op: "presence_batch",
      room: "p",
      events: [
        { op: "presence_join", room: "p", client: "c_B", user: "u-b" },
        { op: "presence_join", room: "p", client: "c_C", user: "u-c" },
        { op: "presence_leave", room: "p", client: "c_B", user: "u-b" },
      ],
    });
    assert.deepEqual(seen, ["+c_B", "+c_C", "-c_B"]);
    assert.deepEqual(room.members.map((m) => m.client), ["c_C", ME]);
  });

  test("the app's first join refused rejects its promise", async () => {
    const { fake, client } = track(setup());
    fake.latest().welcome(ME);
    const p = client.room("secret").join();
    fake.latest().replyError(fake.latest().last("join"), "forbidden", "no");
    await assert.rejects(p, (e: GatehouseError) => e.code === "forbidden" && e.room === "secret");
  });
});

describe("the outbox", () => {
  test("publishes while disconnected wait, bounded, and go out in order after the rejoin's replay", async () => {
    const { fake, client, rec } = track(setup({ outbox: { maxMessages: 3 } }));
    fake.latest().welcome(ME);
    const room = client.room("o");
    quiet(room.join());
    await joinOn(fake.latest(), "o", { seq: 0 });
    fake.latest().serverClose(1006);
    const p = [1, 2, 3].map((n) => room.publish({ n }));
    await assert.rejects(room.publish({ n: 4 }), (e: GatehouseError) => e.code === "outbox_full");
    assert.equal(rec.errors.at(-1)!.code, "outbox_full");
    assert.equal(client.outboxSize, 3);
    mock.timers.tick(250);
    const s = fake.latest();
    s.welcome(ME);
    assert.equal(s.ops("publish").length, 0, "nothing before the rejoin");
    s.reply(s.last("join"), { room: "o", epoch: EPOCH, seq: 2, members: 1, recovered: true, replayed: 2 });
    s.message("o", 1, EPOCH, {});
    assert.equal(s.ops("publish").length, 0, "nothing before the replay is delivered");
    s.message("o", 2, EPOCH, {});
    assert.deepEqual(s.ops("publish").map((f) => f.data), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    s.ops("publish").forEach((f, i) => s.reply(f, { seq: 3 + i }));
    assert.deepEqual(await Promise.all(p), [{ seq: 3 }, { seq: 4 }, { seq: 5 }]);
    assert.equal(client.outboxSize, 0);
  });

  test("maxBytes bounds it too; maxMessages 0 turns it off", async () => {
    const { fake, client } = track(setup({ outbox: { maxMessages: 10, maxBytes: 200 } }));
    fake.latest().welcome(ME);
    const room = client.room("o");
    quiet(room.join());
    await joinOn(fake.latest(), "o", {});
    fake.latest().serverClose(1006);
    quiet(room.publish("x".repeat(100)));
    await assert.rejects(room.publish("y".repeat(100)), (e: GatehouseError) => e.code === "outbox_full" && /200 bytes/.test(e.message));
    const off = track(setup({ outbox: { maxMessages: 0 } }));
    off.fake.latest().welcome(ME);
    const r2 = off.client.room("o");
    quiet(r2.join());
    await assert.rejects(r2.publish(1), (e: GatehouseError) => e.code === "outbox_full");
  });

  test("a publish in flight at a drop: resolved from the replay if the room has it, never re-sent; unknown_outcome otherwise", async () => {
    const { fake, client } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("f");
    quiet(room.join());
    await joinOn(fake.latest(), "f", { seq: 0 });
    const p1 = room.publish({ n: 1 });
    const p2 = room.publish({ n: 2 });
    const p3 = room.publish({ n: 3 });
    const s1 = fake.latest();
    assert.equal(s1.ops("publish").length, 3);
    // The node applied the first two; the connection dropped before any reply.
    s1.serverClose(1006);
    mock.timers.tick(250);
    const s2 = fake.latest();
    s2.welcome("c_NEW0000000000000");
    s2.reply(s2.last("join"), { room: "f", epoch: EPOCH, seq: 2, members: 1, recovered: true, replayed: 2 });
    s2.message("f", 1, EPOCH, { n: 1 }, { client: ME, user: "u-1" });
    s2.message("f", 2, EPOCH, { n: 2 }, { client: ME, user: "u-1" });
    assert.deepEqual(await p1, { seq: 1 });
    assert.deepEqual(await p2, { seq: 2 });
    await assert.rejects(p3, (e: GatehouseError) => e.code === "unknown_outcome");
    assert.equal(s2.ops("publish").length, 0, "nothing re-sent");
  });

  test("own messages seen before the reply are matched in order; a message from another client is not", async () => {
    const { fake, client } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("m");
    quiet(room.join());
    await joinOn(fake.latest(), "m", { seq: 0 });
    const p1 = room.publish("a");
    const s = fake.latest();
    s.message("m", 1, EPOCH, "other", { client: "c_OTHER", user: "u" });
    s.message("m", 2, EPOCH, "a", { client: ME, user: "u-1" });
    s.serverClose(1006);
    mock.timers.tick(250);
    fake.latest().welcome(ME);
    fake.latest().reply(fake.latest().last("join"), { room: "m", epoch: EPOCH, seq: 2, members: 1, recovered: true, replayed: 0 });
    assert.deepEqual(await p1, { seq: 2 });
  });
});

describe("requests and the dispatcher", () => {
  test("replies by id; errors keep the node's code and retryAfterMs; timeouts; connection loss", async () => {
    const { fake, client } = track(setup({ requestTimeoutMs: 1000 }));
    await assert.rejects(client.request("ping"), (e: GatehouseError) => e.code === "connection_lost");
    fake.latest().welcome(ME);
    const a = client.request("ping");
    const b = client.request("presence", { room: "x" });
    const [fa, fb] = fake.latest().sent;
    assert.deepEqual([fa!.id, fb!.id], [1, 2]);
    fake.latest().replyError(fb!, "rate_limited", "100 messages/s (burst 200) or 1048576 bytes/s exceeded", 37);
    fake.latest().reply(fa!, {});
    assert.deepEqual(await a, {});
    await assert.rejects(b, (e: GatehouseError) => e instanceof GatehouseError && e.code === "rate_limited" && e.retryAfterMs === 37 && e.room === "x");
    const c = client.request("ping");
    mock.timers.tick(1000);
    await assert.rejects(c, (e: GatehouseError) => e.code === "timeout");
    const d = client.request("ping");
    fake.latest().serverClose(1006);
    await assert.rejects(d, (e: GatehouseError) => e.code === "connection_lost");
    await assert.rejects(client.request("ping", { id: 5 }), (e: GatehouseError) => e.code === "bad_request");
  });

  test("on(op) dispatches server frames by op, unknown ops included; unsubscribe and once work", () => {
    const { fake, client } = track(setup());
    fake.latest().welcome(ME);
    const seen: string[] = [];
    const off = client.on("direct", (f) => seen.push(`direct ${JSON.stringify(f.data)}`));
    client.once("pong", () => seen.push("pong"));
    client.on("future_op", (f) => seen.push(`future ${String(f.x)}`));
    client.on("frame", (f) => seen.push(`frame ${f.op}`));
    fake.latest().receive({ op: "direct", data: { a: 1 } });
    fake.latest().receive({ op: "pong" });
    fake.latest().receive({ op: "pong" });
    fake.latest().receive({ op: "future_op", x: 7 });
    off();
    fake.latest().receive({ op: "direct", data: 2 });
    assert.deepEqual(seen, ["frame direct", 'direct {"a":1}', "frame pong", "pong", "frame pong", "frame future_op", "future 7", "frame direct"]);
  });

  test("a server error frame and a frame that is not JSON reach on('error'); a throwing handler does not stop the others", () => {
    const { fake, client, rec } = track(setup());
    fake.latest().welcome(ME);
    const reported: unknown[] = [];
    const g = globalThis as { reportError?: (e: unknown) => void };
    const saved = g.reportError;
    g.reportError = (e) => reported.push(e);
    try {
      let after = 0;
      client.on("direct", () => {
        throw new Error("app bug");
      });
      client.on("direct", () => after++);
      fake.latest().receive({ op: "direct", data: 1 });
      assert.equal(after, 1);
      assert.equal((reported[0] as Error).message, "app bug");
    } finally {
      g.reportError = saved;
    }
    fake.latest().receive({ op: "error", code: "rate_limited", message: "slow down", retry_after_ms: 12 });
    fake.latest().receiveRaw("not json");
    fake.latest().receiveRaw(new TextEncoder().encode(JSON.stringify({ op: "pong" })));
    assert.deepEqual(rec.errors.map((e) => e.code), ["rate_limited", "bad_frame"]);
    assert.equal(client.state, "connected");
  });

  test("a half-open connection: no frame for livenessMs, a ping without answer, then a reconnect", () => {
    const { fake, rec } = track(setup({ livenessMs: 5000 }));
    fake.latest().welcome(ME);
    mock.timers.tick(5000);
    const ping = fake.latest().last("ping");
    assert.ok(ping.id !== undefined);
    mock.timers.tick(4999);
    assert.equal(rec.reconnecting.length, 0);
    mock.timers.tick(1);
    assert.equal(rec.disconnected[0]!.code, 1006);
    assert.equal(rec.reconnecting.length, 1);
  });

  test("a lively connection sends no pings", () => {
    const { fake } = track(setup({ livenessMs: 5000 }));
    fake.latest().welcome(ME);
    for (let i = 0; i < 10; i++) {
      mock.timers.tick(2000);
      fake.latest().receive({ op: "pong" });
    }
    assert.equal(fake.latest().ops("ping").length, 0);
  });

  test("messages() is bounded: a loop that falls behind gets iterator_overflow after what it buffered", async () => {
    const { fake, client } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("i");
    const it = room.messages({ bufferSize: 2 });
    quiet(room.join());
    await joinOn(fake.latest(), "i", {});
    for (const seq of [1, 2, 3]) fake.latest().message("i", seq, EPOCH, {});
    assert.equal((await it.next()).value!.seq, 1);
    assert.equal((await it.next()).value!.seq, 2);
    await assert.rejects(it.next(), (e: GatehouseError) => e.code === "iterator_overflow");
    assert.equal((await it.next()).done, true);
  });

  test("close() stops everything: no reconnect, iterators end, outbox rejects", async () => {
    const { fake, client, rec } = track(setup());
    fake.latest().welcome(ME);
    const room = client.room("c");
    const it = room.messages();
    quiet(room.join());
    await joinOn(fake.latest(), "c", {});
    fake.latest().serverClose(1006);
    const queued = room.publish(1);
    client.close();
    await assert.rejects(queued, (e: GatehouseError) => e.code === "closed");
    assert.equal((await it.next()).done, true);
    assert.equal(client.state, "closed");
    mock.timers.tick(60_000);
    assert.equal(fake.sockets.length, 1);
    assert.equal(rec.states.at(-1), "closed");
  });
});

describe("presence in pages", () => {
  /** A client joined to `room` (with presence events when asked), and its socket. */
  async function joined(room: string, presence = false) {
    const t = track(setup());
    t.fake.latest().welcome(ME);
    const r = t.client.room(room);
    quiet(r.join({ presence }));
    await joinOn(t.fake.latest(), room, {});
    return { ...t, room: r, s: t.fake.latest() };
  }
  const member = (client: string) => ({ client, user: `u-${client}` });

  test("presence() follows next page by page and returns every member", async () => {
    const { room, s } = await joined("big");
    const p = room.presence({ limit: 2 });
    await flush(20);
    const first = s.last("presence");
    assert.deepEqual(first, { id: first.id, op: "presence", room: "big", limit: 2 });
    s.reply(first, { room: "big", count: 2, members: [member("c_A"), member("c_B")], next: "c_B" });
    await flush(20);
    const second = s.last("presence");
    assert.deepEqual(second, { id: second.id, op: "presence", room: "big", after: "c_B", limit: 2 });
    s.reply(second, { room: "big", count: 2, members: [member("c_C"), member("c_D")], next: "c_D" });
    await flush(20);
    const third = s.last("presence");
    assert.equal(third.after, "c_D");
    s.reply(third, { room: "big", count: 1, members: [member("c_E")], next: null });
    const r = await p;
    assert.equal(r.count, 5);
    assert.deepEqual(r.members.map((m) => m.client), ["c_A", "c_B", "c_C", "c_D", "c_E"]);
    assert.equal(s.ops("presence").length, 3);
  });

  test("without options no limit is sent; a node older than paging (no next) answers on one page", async () => {
    const { room, s } = await joined("old");
    const p = room.presence();
    await flush(20);
    const req = s.last("presence");
    assert.deepEqual(req, { id: req.id, op: "presence", room: "old" });
    s.reply(req, { room: "old", count: 2, members: [member("c_A"), member("c_B")] });
    const r = await p;
    assert.equal(r.count, 2);
    assert.equal(s.ops("presence").length, 1);
  });

  test("members: the pages are the base, events that crossed any of them apply again", async () => {
    const { room, s } = await joined("p", true);
    // The automatic presence() after the join: two pages.
    await flush(20);
    s.reply(s.last("presence"), { room: "p", count: 2, members: [member("c_A"), member("c_C")], next: "c_C" });
    await flush(20);
    // While the second page is out: A leaves (already listed), B joins (behind the cursor),
    // and D's leave crosses the page that lists D.
    s.receive({ op: "presence_leave", room: "p", client: "c_A", user: "u-c_A" });
    s.receive({ op: "presence_join", room: "p", client: "c_B", user: "u-c_B" });
    s.receive({ op: "presence_leave", room: "p", client: "c_D", user: "u-c_D" });
    const second = s.last("presence");
    assert.equal(second.after, "c_C");
    s.reply(second, { room: "p", count: 2, members: [member("c_D"), member(ME)], next: null });
    await flush(20);
    assert.deepEqual(room.members.map((m) => m.client), ["c_B", "c_C", ME]);
  });

  test("presencePages() yields one page per request, only as the loop asks, and stops at next null", async () => {
    const { room, s } = await joined("it");
    const it = room.presencePages({ limit: 1, after: "c_0" });
    const n1 = it.next();
    await flush(20);
    const first = s.last("presence");
    assert.deepEqual(first, { id: first.id, op: "presence", room: "it", after: "c_0", limit: 1 });
    s.reply(first, { room: "it", count: 1, members: [member("c_A")], next: "c_A" });
    const p1 = await n1;
    assert.deepEqual(p1.value, { room: "it", count: 1, members: [member("c_A")], next: "c_A" });
    await flush(20);
    assert.equal(s.ops("presence").length, 1, "the next page waits for the loop");
    const n2 = it.next();
    await flush(20);
    s.reply(s.last("presence"), { room: "it", count: 1, members: [member("c_B")], next: null });
    assert.equal((await n2).value!.next, null);
    assert.equal((await it.next()).done, true);
    assert.equal(s.ops("presence").length, 2);

    // Leaving the loop early asks for nothing more.
    const seen: string[] = [];
    const loop = (async () => {
      for await (const page of room.presencePages({ limit: 1 })) {
        seen.push(...page.members.map((m) => m.client));
        break;
      }
    })();
    await flush(20);
    s.reply(s.last("presence"), { room: "it", count: 1, members: [member("c_A")], next: "c_A" });
    await loop;
    assert.deepEqual(seen, ["c_A"]);
    assert.equal(s.ops("presence").length, 3);
  });

  test("a failed page rejects with the node's error; a cursor that does not move is an error", async () => {
    const { room, s } = await joined("f");
    const p = room.presence();
    await flush(20);
    s.reply(s.last("presence"), { room: "f", count: 1, members: [member("c_A")], next: "c_A" });
    await flush(20);
    s.replyError(s.last("presence"), "unavailable", "room unavailable, retry", 1000);
    await assert.rejects(p, (e: GatehouseError) => e.code === "unavailable" && e.retryAfterMs === 1000);

    const q = room.presence();
    await flush(20);
    s.reply(s.last("presence"), { room: "f", count: 1, members: [member("c_A")], next: "c_A" });
    await flush(20);
    s.reply(s.last("presence"), { room: "f", count: 0, members: [], next: "c_A" });
    await assert.rejects(q, (e: GatehouseError) => e.code === "internal");
  });

  test("bad options are refused before anything is sent", async () => {
    const { room, s } = await joined("b");
    for (const limit of [0, -1, 1.5, 2 ** 32, "3" as unknown as number]) {
      await assert.rejects(room.presence({ limit }), (e: GatehouseError) => e.code === "bad_request" && /limit/.test(e.message));
      assert.throws(() => room.presencePages({ limit }), (e: GatehouseError) => e.code === "bad_request" && /limit/.test(e.message));
    }
    for (const after of ["", 5 as unknown as string]) {
      assert.throws(() => room.presencePages({ after }), (e: GatehouseError) => e.code === "bad_request" && /after/.test(e.message));
    }
    await assert.rejects(room.presence(null as unknown as object), (e: GatehouseError) => e.code === "bad_request");
    assert.equal(s.ops("presence").length, 0);
  });
});

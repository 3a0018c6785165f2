import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, GatehouseError, MAX_RECONNECT_WINDOW_MS, windowDelay } from "@gatehouse/client";

test("the backoff ceiling grows by the factor and stops at the cap", () => {
  const b = { initialMs: 500, maxMs: 30_000, factor: 2 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 100, 5000].map((n) => backoffCeiling(n, b)),
    [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000],
  );
  assert.deepEqual(DEFAULT_BACKOFF, b);
});

test("full jitter: a delay is uniform in [0, ceiling]", () => {
  const b = { initialMs: 100, maxMs: 1000, factor: 3 };
  assert.equal(backoffDelay(2, b, () => 0), 0);
  assert.equal(backoffDelay(2, b, () => 0.5), 450);
  assert.equal(backoffDelay(2, b, () => 0.999999), 900);
  assert.equal(backoffDelay(9, b, () => 0.999999), 1000);
  // A broken random source cannot push a delay out of bounds.
  assert.equal(backoffDelay(1, b, () => Number.NaN), 0);
  assert.equal(backoffDelay(1, b, () => 7), 300);
  let seen = 0;
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(3, b, Math.random);
    assert.ok(d >= 0 && d <= 1000);
    seen = Math.max(seen, d);
  }
  assert.ok(seen > 500, "the whole range is used");
});

test("the drain window: a random point inside after_ms; bad windows fall back, long ones are cut", () => {
  assert.deepEqual(windowDelay([1000, 3000], () => 0, 5000), { delay: 1000, window: [1000, 3000] });
  assert.deepEqual(windowDelay([1000, 3000], () => 0.5, 5000), { delay: 2000, window: [1000, 3000] });
  assert.deepEqual(windowDelay([1000, 3000], () => 0.9999999, 5000), { delay: 3000, window: [1000, 3000] });
  assert.deepEqual(windowDelay([0, 0], () => 0.7, 5000), { delay: 0, window: [0, 0] });
  for (const bad of [undefined, null, [], [1], [3000, 1000], [-5, 10], ["0", "5"], [0, Number.POSITIVE_INFINITY], { 0: 1, 1: 2 }]) {
    assert.deepEqual(windowDelay(bad, () => 0.5, 4000), { delay: 2000, window: [0, 4000] }, JSON.stringify(bad));
  }
  assert.deepEqual(windowDelay([0, 10 * 60_000], () => 1, 5000).window, [0, MAX_RECONNECT_WINDOW_MS]);
});

test("backoff options are checked", async () => {
  const { connect } = await import("@gatehouse/client");
  const WS = class {} as never;
  for (const [backoff, msg] of [
    [{ initialMs: 0 }, /initialMs must be a positive/],
    [{ maxMs: -1 }, /maxMs must be a positive/],
    [{ factor: 0.5 }, /factor must be at least 1/],
    [{ initialMs: 1000, maxMs: 10 }, /maxMs \(10\) must be at least backoff.initialMs/],
  ] as const) {
    assert.throws(() => connect("ws://127.0.0.1:1/ws", { WebSocket: WS, backoff }), (e: GatehouseError) => e.code === "bad_request" && msg.test(e.message));
  }
});

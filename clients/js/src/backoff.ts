import { badRequest } from "./errors.js";

/** Exponential backoff with full jitter: attempt n waits a uniform random time in [0, min(maxMs, initialMs × factor^n)]. */
export interface BackoffOptions {
  /** Upper bound of the first wait (attempt 0). Default 500 ms. */
  initialMs?: number;
  /** The cap on every wait. Default 30 000 ms. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000, factor: 2 };

function positive(name: string, v: unknown, allowZero: boolean): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw badRequest(`backoff.${name} must be a ${allowZero ? "non-negative" : "positive"} finite number, got ${String(v)}`);
  }
  return v;
}

export function resolveBackoff(o: BackoffOptions | undefined): Backoff {
  const b: Backoff = {
    initialMs: positive("initialMs", o?.initialMs ?? DEFAULT_BACKOFF.initialMs, false),
    maxMs: positive("maxMs", o?.maxMs ?? DEFAULT_BACKOFF.maxMs, false),
    factor: positive("factor", o?.factor ?? DEFAULT_BACKOFF.factor, false),
  };
  if (b.factor < 1) throw badRequest(`backoff.factor must be at least 1, got ${b.factor}`);
  if (b.maxMs < b.initialMs) throw badRequest(`backoff.maxMs (${b.maxMs}) must be at least backoff.initialMs (${b.initialMs})`);
  return b;
}

/** The ceiling of attempt `attempt` (0-based): min(maxMs, initialMs × factor^attempt). */
export function backoffCeiling(attempt: number, b: Backoff): number {
  // Bounded exponent: past ~1100 doublings a float is Infinity anyway; min() keeps the cap.
  const exp = Math.min(Math.max(0, attempt), 1000);
  return Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, exp));
}

/** Full jitter: a uniform random wait in [0, ceiling] for attempt `attempt` (0-based). */
export function backoffDelay(attempt: number, b: Backoff, random: () => number): number {
  return Math.round(clamp01(random()) * backoffCeiling(attempt, b));
}

/** Longest `after_ms` window the client honours (a longer one is cut to this). */
export const MAX_RECONNECT_WINDOW_MS = 60_000;

/**
 * A uniform random wait inside a `reconnect` frame's `after_ms` window `[lo, hi]`. A malformed
 * window falls back to `[0, fallbackHi]`; a window past {@link MAX_RECONNECT_WINDOW_MS} is cut.
 */
export function windowDelay(afterMs: unknown, random: () => number, fallbackHi: number): { delay: number; window: [number, number] } {
  let lo = 0;
  let hi = fallbackHi;
  if (
    Array.isArray(afterMs) &&
    afterMs.length === 2 &&
    typeof afterMs[0] === "number" &&
    typeof afterMs[1] === "number" &&
    Number.isFinite(afterMs[0]) &&
    Number.isFinite(afterMs[1]) &&
    afterMs[0] >= 0 &&
    afterMs[1] >= afterMs[0]
  ) {
    lo = afterMs[0];
    hi = afterMs[1];
  }
  lo = Math.min(lo, MAX_RECONNECT_WINDOW_MS);
  hi = Math.min(hi, MAX_RECONNECT_WINDOW_MS);
  return { delay: Math.round(lo + clamp01(random()) * (hi - lo)), window: [lo, hi] };
}

function clamp01(x: number): number {
  if (!(x >= 0)) return 0;
  return x >= 1 ? 1 : x;
}

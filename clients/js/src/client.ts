import { type Backoff, type BackoffOptions, backoffDelay, resolveBackoff, windowDelay } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { GatehouseError, badRequest } from "./errors.js";
import { tokenExpiresAt } from "./jwt.js";
import {
  type DirectFrame,
  type DisconnectFrame,
  type ErrorFrame,
  type MessageFrame,
  type PongFrame,
  type PresenceBatchFrame,
  type PresenceFrame,
  type PublishResult,
  type ReconnectFrame,
  type ReplyFrame,
  ROOM_NAME,
  SUBPROTOCOL,
  type SnapshotFrame,
  type UnknownFrame,
  type WelcomeFrame,
} from "./protocol.js";
import { type GapEvent, type PublishEntry, type RequestHandlers, Room, type RoomHost, settle } from "./room.js";
import { type WebSocketConstructor, type WebSocketLike, defaultWebSocket, frameText, utf8Length } from "./transport.js";

/** Where the client is: before its first `welcome`, connected, between connections, or done. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

export interface ConnectOptions {
  /** A JWT. With `getToken` too, this one is used first. */
  token?: string;
  /**
   * Returns a fresh JWT. Called before the first connection when there is no `token`, after the
   * node closes with 4001 (token expired), before connecting when the current token's `exp` is
   * within `tokenRefreshSkewMs`, and after three handshakes in a row failed.
   */
  getToken?: () => string | Promise<string>;
  /**
   * How the token reaches the node: `"protocol"` (default) offers it as the subprotocol entry
   * `token.<JWT>` next to `gatehouse.v1`, so it stays out of URLs and access logs; `"query"`
   * sends `?token=`.
   */
  tokenTransport?: "protocol" | "query";
  /** The WebSocket constructor; default the platform's (`globalThis.WebSocket`). On Node.js 20, pass `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff: full jitter, `initialMs` 500, `factor` 2, capped at `maxMs` 30 000. */
  backoff?: BackoffOptions;
  /** How long a request waits for its reply (default 10 000 ms). */
  requestTimeoutMs?: number;
  /** How long a connection attempt may take until `welcome` (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Bounds of the outbox that holds publishes while disconnected (default 100 messages, 1 MiB). */
  outbox?: { maxMessages?: number; maxBytes?: number };
  /** Default buffer of `room.messages()` iterators (default 1000). */
  iteratorBuffer?: number;
  /**
   * With no frame from the node for this long, the client sends a `ping` and drops the
   * connection if nothing answers within as long again (a half-open connection). Default: the
   * node's `heartbeat_ms` from `welcome` (15 s); `false` turns it off.
   */
  livenessMs?: number | false;
  /** Ask `getToken` for a new token this long before the current one's `exp` (default 5000 ms). */
  tokenRefreshSkewMs?: number;
  /** Fallback `after_ms` upper bound for a 1012 close without a `reconnect` frame (default 5000 ms). */
  drainWindowMs?: number;
  /** Random source in [0, 1) for the jitter (default `Math.random`). */
  random?: () => number;
}

export interface ConnectedEvent {
  client: string;
  user: string;
  node: string;
  /** The node kept the client id of the previous connection (`?session=` resume worked). */
  resumed: boolean;
  /** 0 for the first connection, then how many connections came before this one. */
  reconnects: number;
  welcome: WelcomeFrame;
}

export interface DisconnectedEvent {
  /** The close code (the `disconnect` frame's code when the close frame itself was lost). */
  code: number;
  reason: string;
  /** What the client does next: reconnect, or stop (state `closed`). */
  willReconnect: boolean;
}

export type ReconnectCause =
  /** 1012 after a `reconnect` frame: a random wait inside its `after_ms` window. */
  | "drain"
  /** 4001: a new token from `getToken`, then reconnect. */
  | "token"
  /** Anything else (1001, 1006, 4008, 4009, network errors, failed handshakes): backoff. */
  | "backoff";

export interface ReconnectingEvent {
  /** 1 for the first attempt after a connection ended, counting up until one succeeds. */
  attempt: number;
  delayMs: number;
  cause: ReconnectCause;
  /** The close code that led here. */
  code: number;
  /** For `drain`: the `after_ms` window the delay was drawn from. */
  window?: [number, number];
  /** The URL the next attempt goes to. */
  url: string;
}

export interface ClientStats {
  /** Connections that reached `welcome`. */
  connects: number;
  /** Connections that ended (for any reason). */
  disconnects: number;
  /** Messages delivered to the app. */
  delivered: number;
  /** Messages dropped because they had already been delivered (same epoch, seq). */
  duplicatesDropped: number;
  /** Gap events. */
  gaps: number;
  /** Total time without a connection since the first `welcome`, in ms (the current outage included). */
  disconnectedMs: number;
}

/**
 * The client's events. Besides its own (`state`, `connected`, `disconnected`, `reconnecting`,
 * `error`, `gap`), every server frame is dispatched by its `op` (`message`, `direct`,
 * `presence_join`, …; ops this version does not know arrive under their own name too), and
 * `frame` sees every frame raw. `message` carries each room message once (after dedupe).
 */
export interface ClientEvents {
  state: ConnectionState;
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  reconnecting: ReconnectingEvent;
  /** Errors the app should know of: server `error` frames, outbox overflow, refused rejoins, token refresh failures. */
  error: GatehouseError;
  gap: GapEvent;
  frame: UnknownFrame;
  welcome: WelcomeFrame;
  reply: ReplyFrame;
  message: MessageFrame;
  snapshot: SnapshotFrame;
  presence_join: PresenceFrame;
  presence_leave: PresenceFrame;
  direct: DirectFrame;
  pong: PongFrame;
  reconnect: ReconnectFrame;
  disconnect: DisconnectFrame;
}

interface Pending extends RequestHandlers {
  gen: number;
  timer: unknown;
  publish?: PublishEntry;
}

const KNOWN_OPTIONS = new Set([
  "token",
  "getToken",
  "tokenTransport",
  "WebSocket",
  "backoff",
  "requestTimeoutMs",
  "connectTimeoutMs",
  "outbox",
  "iteratorBuffer",
  "livenessMs",
  "tokenRefreshSkewMs",
  "drainWindowMs",
  "random",
]);

/** Codes after which the client stops instead of reconnecting. */
const STOP_CODES = new Set([1000, 1008, 4003]);
/** How long two 4001 closes must be apart for the second to reconnect without backoff. */
const TOKEN_LOOP_MS = 10_000;
/** Handshakes that fail in a row before `getToken` is asked again. */
const HANDSHAKE_FAILURES_BEFORE_REFRESH = 3;
/** Frame size limit before the first `welcome` says otherwise (the node's default). */
const DEFAULT_MAX_MESSAGE_BYTES = 65_536;

function positiveNumber(name: string, v: unknown, dflt: number, allowZero = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw badRequest(`${name} must be a ${allowZero ? "non-negative" : "positive"} finite number, got ${String(v)}`);
  }
  return v;
}

/** What is wrong with a token, or undefined. As a subprotocol entry it must be an HTTP token (a JWT is). */
function tokenProblem(t: unknown, transport: "protocol" | "query"): string | undefined {
  if (typeof t !== "string") return `${typeof t}, not a string`;
  if (t.length === 0) return "an empty string";
  if (transport === "protocol" && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(t)) {
    return "a string with characters a WebSocket subprotocol cannot carry (a JWT has none; use tokenTransport: \"query\" for other tokens)";
  }
  return undefined;
}

function parseUrl(u: unknown): string {
  if (typeof u !== "string" || u.length === 0) throw badRequest(`url must be a non-empty string, got ${String(u)}`);
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw badRequest(`url is not a valid URL: ${u}`);
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw badRequest(`url must start with ws:// or wss://, got ${u}`);
  }
  return u;
}

/**
 * Connects to Gatehouse and keeps connecting: see {@link GatehouseClient}. `url` is the node's
 * (or the load balancer's) `ws://…/ws` URL, or several, tried in turn.
 */
export function connect(url: string | string[], options: ConnectOptions = {}): GatehouseClient {
  return new GatehouseClient(url, options);
}

/**
 * A Gatehouse connection that survives drains, failovers and deploys: it reconnects with
 * backoff, resumes its session, rejoins its rooms with `since` and delivers every message once.
 */
export class GatehouseClient extends Emitter<ClientEvents> {
  private readonly urls: string[];
  private urlIndex = 0;
  private readonly WS: WebSocketConstructor;
  private readonly getToken?: () => string | Promise<string>;
  private readonly tokenTransport: "protocol" | "query";
  private readonly backoff: Backoff;
  /** @internal */
  readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly outboxMax: number;
  private readonly outboxMaxBytes: number;
  /** @internal */
  readonly iteratorBuffer: number;
  private readonly livenessOption: number | false | undefined;
  private readonly tokenRefreshSkewMs: number;
  private readonly drainWindowMs: number;
  private readonly random: () => number;

  private token: string | undefined;
  private tokenStale = false;
  private last4001At = -Infinity;
  private ws: WebSocketLike | null = null;
  private gen = 0;
  private opened = false;
  private welcomed = false;
  private closedForGood = false;
  private currentState: ConnectionState = "connecting";
  private attempt = 0;
  private retries = 0;
  private handshakeFailures = 0;
  private session: string | undefined;
  private welcomeFrame: WelcomeFrame | undefined;
  private hint: unknown = undefined;
  private hintSeen = false;
  private farewell: DisconnectFrame | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly roomMap = new Map<string, Room>();
  private readonly host: RoomHost;
  private readonly outbox: PublishEntry[] = [];
  private outboxBytes = 0;
  private reconnectTimer: unknown;
  private connectTimer: unknown;
  private livenessTimer: unknown;
  private lastFrameAt = 0;
  private disconnectedSince: number | undefined;
  private readonly counters = { connects: 0, disconnects: 0, delivered: 0, duplicatesDropped: 0, gaps: 0, disconnectedMs: 0 };

  constructor(url: string | string[], options: ConnectOptions = {}) {
    super();
    if (options === null || typeof options !== "object") throw badRequest("options must be an object");
    for (const k of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(k)) throw badRequest(`unknown option '${k}' (known: ${[...KNOWN_OPTIONS].join(", ")})`);
    }
    const urls = Array.isArray(url) ? url : [url];
    if (urls.length === 0) throw badRequest("url: give at least one ws:// or wss:// URL");
    this.urls = urls.map(parseUrl);
    if (options.token !== undefined) {
      const bad = tokenProblem(options.token, options.tokenTransport ?? "protocol");
      if (bad) throw badRequest(`token: ${bad}`);
    }
    if (options.getToken !== undefined && typeof options.getToken !== "function") throw badRequest("getToken must be a function");
    if (options.tokenTransport !== undefined && options.tokenTransport !== "protocol" && options.tokenTransport !== "query") {
      throw badRequest(`tokenTransport must be "protocol" or "query", got ${String(options.tokenTransport)}`);
    }
    if (options.WebSocket !== undefined && typeof options.WebSocket !== "function") {
      throw badRequest("WebSocket must be a WebSocket constructor (e.g. `import WebSocket from \"ws\"`)");
    }
    if (options.random !== undefined && typeof options.random !== "function") throw badRequest("random must be a function");
    if (options.outbox !== undefined && (options.outbox === null || typeof options.outbox !== "object")) {
      throw badRequest("outbox must be an object {maxMessages, maxBytes}");
    }
    if (options.livenessMs !== undefined && options.livenessMs !== false) positiveNumber("livenessMs", options.livenessMs, 0);
    this.WS = options.WebSocket ?? defaultWebSocket();
    this.token = options.token;
    this.getToken = options.getToken;
    this.tokenTransport = options.tokenTransport ?? "protocol";
    this.backoff = resolveBackoff(options.backoff);
    this.requestTimeoutMs = positiveNumber("requestTimeoutMs", options.requestTimeoutMs, 10_000);
    this.connectTimeoutMs = positiveNumber("connectTimeoutMs", options.connectTimeoutMs, 10_000);
    this.outboxMax = Math.floor(positiveNumber("outbox.maxMessages", options.outbox?.maxMessages, 100, true));
    this.outboxMaxBytes = positiveNumber("outbox.maxBytes", options.outbox?.maxBytes, 1 << 20, true);
    this.iteratorBuffer = Math.floor(positiveNumber("iteratorBuffer", options.iteratorBuffer, 1000));
    this.livenessOption = options.livenessMs;
    this.tokenRefreshSkewMs = positiveNumber("tokenRefreshSkewMs", options.tokenRefreshSkewMs, 5000, true);
    this.drainWindowMs = positiveNumber("drainWindowMs", options.drainWindowMs, 5000, true);
    this.random = options.random ?? Math.random;
    this.host = this.makeHost();
    void this.open();
  }

  // --- Public API -------------------------------------------------------------------------------

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The last `welcome` (client id, user, node, limits), if connected once. */
  get welcome(): WelcomeFrame | undefined {
    return this.welcomeFrame;
  }

  /** Counters for the app's own display or metrics. */
  get stats(): ClientStats {
    const now = Date.now();
    const current = this.disconnectedSince !== undefined ? now - this.disconnectedSince : 0;
    return { ...this.counters, disconnectedMs: this.counters.disconnectedMs + current };
  }

  /** The room `name` (the same object on every call). Throws `bad_request` for an invalid name. */
  room<T = unknown>(name: string): Room<T> {
    if (typeof name !== "string" || !ROOM_NAME.test(name)) {
      throw badRequest(`room name must be 1-128 characters from A-Z a-z 0-9 _ . : @ -, got ${JSON.stringify(name)}`);
    }
    let r = this.roomMap.get(name);
    if (!r) {
      r = new Room(this.host, name);
      this.roomMap.set(name, r);
    }
    return r as unknown as Room<T>;
  }

  /** The rooms created with {@link room}. */
  get rooms(): Room[] {
    return [...this.roomMap.values()];
  }

  /**
   * Sends a request with an id and resolves with its `result`, or rejects with a
   * {@link GatehouseError}: the node's error (`rate_limited` and `unavailable` carry
   * `retryAfterMs`), `timeout`, `connection_lost` or `closed`. For ops the room API has no method
   * for; rooms' ops are better done through `client.room(name)`.
   */
  request<R = Record<string, unknown>>(op: string, fields: Record<string, unknown> = {}): Promise<R> {
    if (typeof op !== "string" || op.length === 0) return Promise.reject(badRequest("request(op): op must be a non-empty string"));
    if (fields === null || typeof fields !== "object" || Array.isArray(fields)) return Promise.reject(badRequest("request(op, fields): fields must be an object"));
    if ("id" in fields || "op" in fields) return Promise.reject(badRequest("request(op, fields): fields must not set id or op"));
    return this.requestPromise<R>({ ...fields, op });
  }

  /** Sends a frame as is (no id, no reply awaited). Throws `connection_lost` when not connected. */
  send(frame: Record<string, unknown>): void {
    if (frame === null || typeof frame !== "object" || typeof frame.op !== "string") throw badRequest("send(frame): frame must be an object with a string op");
    if (!this.ws || !this.welcomed) throw new GatehouseError("connection_lost", "send: not connected");
    this.sendText(this.encode(frame));
  }

  /** Resolves once connected (at once if connected now); rejects if the client closes first or after `timeoutMs`. */
  whenConnected(timeoutMs?: number): Promise<void> {
    if (this.currentState === "connected") return Promise.resolve();
    if (this.currentState === "closed") return Promise.reject(new GatehouseError("closed", "the client is closed"));
    return new Promise((resolve, reject) => {
      let timer: unknown;
      const offC = this.on("connected", () => {
        done();
        resolve();
      });
      const offS = this.on("state", (s) => {
        if (s === "closed") {
          done();
          reject(new GatehouseError("closed", "the client closed before it connected"));
        }
      });
      const done = () => {
        offC();
        offS();
        if (timer !== undefined) clearTimeout(timer);
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(new GatehouseError("timeout", `not connected within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /**
   * Closes the connection (code 1000) and stops for good: no reconnect, pending requests and
   * queued publishes reject with `closed`, iterators end.
   */
  close(code = 1000, reason = "client closed"): void {
    if (this.closedForGood) return;
    const ws = this.ws;
    const wasConnected = this.welcomed;
    this.detach();
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        try {
          ws.close();
        } catch {
          /* already closing */
        }
      }
    }
    if (wasConnected) {
      this.counters.disconnects++;
      this.emit("disconnected", { code, reason, willReconnect: false });
    }
    this.shutdown(new GatehouseError("closed", `the client was closed (${reason})`));
  }

  // --- Connection -------------------------------------------------------------------------------

  private get url(): string {
    return this.urls[this.urlIndex % this.urls.length]!;
  }

  private setState(s: ConnectionState): void {
    if (this.currentState === s) return;
    this.currentState = s;
    this.emit("state", s);
  }

  private async open(): Promise<void> {
    if (this.closedForGood) return;
    const myGen = ++this.gen;
    this.setState(this.counters.connects === 0 ? "connecting" : "reconnecting");
    if (this.getToken && this.needToken()) {
      let t: unknown;
      let timer: unknown;
      try {
        const getToken = this.getToken;
        t = await Promise.race([
          Promise.resolve().then(() => getToken()),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no token within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
          }),
        ]);
        const bad = tokenProblem(t, this.tokenTransport);
        if (bad) throw new Error(`getToken returned ${bad}`);
      } catch (e) {
        clearTimeout(timer);
        if (myGen !== this.gen || this.closedForGood) return;
        this.emit("error", new GatehouseError("token_refresh_failed", `getToken failed: ${e instanceof Error ? e.message : String(e)}`));
        this.scheduleReconnect(1006, "backoff");
        return;
      }
      clearTimeout(timer);
      if (myGen !== this.gen || this.closedForGood) return;
      this.token = t as string;
      this.tokenStale = false;
    }
    const url = new URL(this.url);
    if (this.session !== undefined) url.searchParams.set("session", this.session);
    const protocols = [SUBPROTOCOL];
    if (this.token !== undefined) {
      if (this.tokenTransport === "query") url.searchParams.set("token", this.token);
      else protocols.push(`token.${this.token}`);
    }
    let ws: WebSocketLike;
    try {
      ws = new this.WS(url.toString(), protocols);
    } catch (e) {
      this.emit("error", new GatehouseError("connection_lost", `could not open a WebSocket to ${this.url}: ${e instanceof Error ? e.message : String(e)}`));
      this.scheduleReconnect(1006, "backoff");
      return;
    }
    this.ws = ws;
    this.opened = false;
    this.welcomed = false;
    this.hint = undefined;
    this.hintSeen = false;
    this.farewell = undefined;
    ws.onopen = () => {
      if (myGen === this.gen) this.opened = true;
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (myGen === this.gen) this.onData(ev.data);
    };
    ws.onerror = () => {
      /* the close event follows */
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (myGen === this.gen) this.onSocketClosed(typeof ev.code === "number" ? ev.code : 1006, typeof ev.reason === "string" ? ev.reason : "");
    };
    this.connectTimer = setTimeout(() => {
      if (myGen === this.gen && !this.welcomed) this.abandon(`no welcome within ${this.connectTimeoutMs} ms`);
    }, this.connectTimeoutMs);
  }

  /** Whether a token must be fetched before connecting. */
  private needToken(): boolean {
    if (this.token === undefined || this.tokenStale) return true;
    const exp = tokenExpiresAt(this.token);
    return exp !== undefined && exp - this.tokenRefreshSkewMs <= Date.now();
  }

  /** Drops the current socket at once (its later events are ignored) and handles it as closed. */
  private abandon(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.gen++;
    const t = ws as unknown as { terminate?: () => void };
    try {
      if (typeof t.terminate === "function") t.terminate();
      else ws.close(4000, "client: " + reason.slice(0, 100));
    } catch {
      /* closing anyway */
    }
    this.onSocketClosed(1006, reason);
  }

  /** Stops delivering events of the current socket. */
  private detach(): void {
    this.gen++;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = () => {};
    }
    this.clearConnectionTimers();
  }

  private clearConnectionTimers(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    if (this.livenessTimer !== undefined) clearTimeout(this.livenessTimer);
    this.connectTimer = undefined;
    this.livenessTimer = undefined;
  }

  private onSocketClosed(closeCode: number, closeReason: string): void {
    const wasWelcomed = this.welcomed;
    const wasOpened = this.opened;
    const farewell = this.farewell;
    const hintSeen = this.hintSeen;
    const hint = this.hint;
    this.detach();
    this.welcomed = false;
    // The close frame may be lost after the `disconnect` frame (a proxy, a dying socket).
    const code = (closeCode === 1005 || closeCode === 1006) && farewell ? farewell.code : closeCode;
    const reason = closeReason || farewell?.reason || "";
    if (wasWelcomed) {
      this.counters.disconnects++;
      this.disconnectedSince ??= Date.now();
    }
    this.failPending();
    for (const r of this.roomMap.values()) r.onConnectionLost();

    const stop = STOP_CODES.has(code) || farewell?.reconnect === false;
    if (stop) {
      if (wasWelcomed || wasOpened) this.emit("disconnected", { code, reason, willReconnect: false });
      const what = code === 4003 ? "kicked" : code === 1000 ? "closed by the server" : `closed with ${code}`;
      this.shutdown(new GatehouseError("closed", `${what}${reason ? `: ${reason}` : ""}`));
      return;
    }
    if (code === 4001 && !this.getToken) {
      this.emit("disconnected", { code, reason, willReconnect: false });
      const err = new GatehouseError("token_expired", "the token expired (4001) and there is no getToken to get a new one");
      this.emit("error", err);
      this.shutdown(err);
      return;
    }
    if (wasWelcomed || wasOpened) this.emit("disconnected", { code, reason, willReconnect: true });
    if (!wasOpened) {
      this.handshakeFailures++;
      if (this.handshakeFailures >= HANDSHAKE_FAILURES_BEFORE_REFRESH && this.getToken) {
        this.tokenStale = true;
        this.handshakeFailures = 0;
      }
    }
    if (code === 4001) {
      this.tokenStale = true;
      const now = Date.now();
      const looping = now - this.last4001At < TOKEN_LOOP_MS;
      this.last4001At = now;
      this.scheduleReconnect(code, "token", looping ? undefined : 0);
    } else if (hintSeen || code === 1012) {
      this.scheduleReconnect(code, "drain", undefined, hint);
    } else {
      this.scheduleReconnect(code, "backoff");
    }
  }

  private scheduleReconnect(code: number, cause: "drain" | "token" | "backoff", fixedDelay?: number, hint?: unknown): void {
    if (this.closedForGood) return;
    let delay: number;
    let window: [number, number] | undefined;
    if (cause === "drain") {
      const w = windowDelay(hint, this.random, this.drainWindowMs);
      delay = w.delay;
      window = w.window;
    } else if (fixedDelay !== undefined) {
      delay = fixedDelay;
    } else {
      delay = backoffDelay(this.attempt, this.backoff, this.random);
      this.attempt++;
    }
    // The node being drained, dead or refusing: the next URL (with one URL, the same).
    if (cause !== "token") this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    this.retries++;
    this.setState(this.counters.connects === 0 ? "connecting" : "reconnecting");
    const ev: ReconnectingEvent = { attempt: this.retries, delayMs: delay, cause, code, url: this.url };
    if (window) ev.window = window;
    this.emit("reconnecting", ev);
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, delay);
  }

  /** Everything waiting on this client fails with `err`; no more reconnects. */
  private shutdown(err: GatehouseError): void {
    this.closedForGood = true;
    this.detach();
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.disconnectedSince !== undefined) {
      this.counters.disconnectedMs += Date.now() - this.disconnectedSince;
      this.disconnectedSince = undefined;
    }
    this.failPending(err);
    for (const r of this.roomMap.values()) r.onClosed(err);
    for (const e of this.outbox.splice(0)) settle(e, undefined, err);
    this.outboxBytes = 0;
    this.setState("closed");
  }

  /** Requests of the dropped connection: publishes wait for the rejoin, the rest fail. */
  private failPending(err?: GatehouseError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      if (p.publish && !err) {
        p.publish.lost = true;
        continue;
      }
      p.onFail(err ?? new GatehouseError("connection_lost", "the connection closed before the reply"));
    }
  }

  // --- Frames -----------------------------------------------------------------------------------

  private onData(data: unknown): void {
    this.lastFrameAt = Date.now();
    const text = frameText(data);
    let f: unknown;
    try {
      f = text === undefined ? undefined : JSON.parse(text);
    } catch {
      f = undefined;
    }
    if (!f || typeof f !== "object" || Array.isArray(f) || typeof (f as { op?: unknown }).op !== "string") {
      this.emit("error", new GatehouseError("bad_frame", `the server sent a frame that is not a JSON object with an op: ${String(text).slice(0, 200)}`));
      return;
    }
    const frame = f as UnknownFrame;
    this.emit("frame", frame);
    switch (frame.op) {
      case "welcome":
        this.onWelcome(frame as unknown as WelcomeFrame);
        return;
      case "reply":
        this.onReply(frame as unknown as ReplyFrame);
        return;
      case "message": {
        const m = frame as unknown as MessageFrame;
        this.roomMap.get(m.room)?.handleMessage(m);
        return;
      }
      case "snapshot": {
        const s = frame as unknown as SnapshotFrame;
        this.roomMap.get(s.room)?.handleSnapshot(s);
        this.emit("snapshot", s);
        return;
      }
      case "presence_join":
      case "presence_leave": {
        const p = frame as unknown as PresenceFrame;
        this.roomMap.get(p.room)?.handlePresence(p);
        this.emit(p.op, p);
        return;
      }
      case "presence_batch": {
        // A tick's events, delivered one by one as if each had come alone.
        const b = frame as unknown as PresenceBatchFrame;
        for (const p of Array.isArray(b.events) ? b.events : []) {
          if (p.op !== "presence_join" && p.op !== "presence_leave") continue;
          this.roomMap.get(p.room)?.handlePresence(p);
          this.emit(p.op, p);
        }
        return;
      }
      case "error": {
        const e = frame as unknown as ErrorFrame;
        this.emit("error", new GatehouseError(String(e.code), String(e.message), { retryAfterMs: e.retry_after_ms }));
        return;
      }
      case "reconnect":
        this.hintSeen = true;
        this.hint = (frame as unknown as ReconnectFrame).after_ms;
        this.emit("reconnect", frame);
        return;
      case "disconnect":
        this.farewell = frame as unknown as DisconnectFrame;
        this.emit("disconnect", frame);
        return;
      default:
        // direct, pong, and ops newer than this package.
        this.emit(frame.op, frame);
    }
  }

  private onWelcome(w: WelcomeFrame): void {
    if (this.welcomed) return;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const previous = this.welcomeFrame?.client;
    const reconnects = this.counters.connects;
    this.welcomed = true;
    this.welcomeFrame = w;
    this.session = typeof w.session === "string" ? w.session : undefined;
    this.attempt = 0;
    this.retries = 0;
    this.handshakeFailures = 0;
    this.counters.connects++;
    if (this.disconnectedSince !== undefined) {
      this.counters.disconnectedMs += Date.now() - this.disconnectedSince;
      this.disconnectedSince = undefined;
    }
    this.setState("connected");
    this.emit("welcome", w);
    for (const r of this.roomMap.values()) r.onConnected();
    this.emit("connected", { client: w.client, user: w.user, node: w.node, resumed: previous !== undefined && previous === w.client, reconnects, welcome: w });
    this.scheduleLiveness();
  }

  private onReply(f: ReplyFrame): void {
    const id = typeof f.id === "number" ? f.id : Number.NaN;
    const p = this.pending.get(id);
    this.emit("reply", f);
    if (!p) return; // a reply after its timeout
    this.pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.onReply(f);
  }

  private scheduleLiveness(): void {
    if (this.livenessOption === false) return;
    const every = Math.max(100, this.livenessOption ?? this.welcomeFrame?.heartbeat_ms ?? 15_000);
    const gen = this.gen;
    this.livenessTimer = setTimeout(() => {
      this.livenessTimer = undefined;
      if (gen !== this.gen || !this.welcomed) return;
      if (Date.now() - this.lastFrameAt < every) {
        this.scheduleLiveness();
        return;
      }
      this.requestInternal(
        { op: "ping" },
        {
          onReply: () => {
            if (gen === this.gen) this.scheduleLiveness();
          },
          onFail: (err) => {
            if (gen === this.gen && err.code === "timeout") this.abandon(`no answer to a ping within ${every} ms`);
          },
        },
        every,
      );
    }, every);
  }

  // --- Requests ---------------------------------------------------------------------------------

  private get maxMessageBytes(): number {
    return this.welcomeFrame?.limits?.max_message_bytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  private encode(frame: Record<string, unknown>): string {
    let text: string;
    try {
      text = JSON.stringify(frame);
    } catch (e) {
      throw badRequest(`the frame is not JSON-serialisable: ${e instanceof Error ? e.message : String(e)}`);
    }
    const max = this.maxMessageBytes;
    const n = utf8Length(text, max);
    if (n > max) {
      throw new GatehouseError("payload_too_large", `the frame is ${n} bytes; the node takes at most ${max} (it would close the connection with 1009)`);
    }
    return text;
  }

  private sendText(text: string): void {
    try {
      this.ws!.send(text);
    } catch (e) {
      // A socket that is closing: its close event follows and the request fails with it.
      this.emit("error", new GatehouseError("connection_lost", `send failed: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  private requestInternal(frame: Record<string, unknown>, handlers: RequestHandlers, timeoutMs?: number, publish?: PublishEntry): void {
    if (this.closedForGood) {
      handlers.onFail(new GatehouseError("closed", "the client is closed"));
      return;
    }
    if (!this.ws || !this.welcomed) {
      handlers.onFail(new GatehouseError("connection_lost", `${String(frame.op)}: not connected`));
      return;
    }
    const id = this.nextId++;
    let text: string;
    if (publish) {
      // Publishes are encoded once, when queued: splice the id in front.
      text = `{"id":${id},${publish.frame.slice(1)}`;
    } else {
      try {
        text = this.encode({ id, ...frame });
      } catch (e) {
        handlers.onFail(e as GatehouseError);
        return;
      }
    }
    const gen = this.gen;
    const p: Pending = { ...handlers, gen, timer: undefined, publish };
    p.timer = setTimeout(() => {
      if (this.pending.get(id) !== p) return;
      this.pending.delete(id);
      handlers.onFail(new GatehouseError("timeout", `${String(frame.op)}: no reply within ${timeoutMs ?? this.requestTimeoutMs} ms`, { room: typeof frame.room === "string" ? frame.room : undefined }));
    }, timeoutMs ?? this.requestTimeoutMs);
    this.pending.set(id, p);
    this.sendText(text);
  }

  /** A request as a promise of its result. */
  private requestPromise<R>(frame: Record<string, unknown>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.requestInternal(frame, {
        onReply: (f) => {
          if (f.ok) resolve((f.result ?? {}) as R);
          else {
            const e = f.error ?? { code: "internal", message: "reply without error body" };
            reject(new GatehouseError(e.code, e.message, { retryAfterMs: e.retry_after_ms, room: typeof frame.room === "string" ? frame.room : undefined }));
          }
        },
        onFail: reject,
      });
    });
  }

  // --- Publishing and the outbox ----------------------------------------------------------------

  private publish(room: Room, data: unknown): Promise<PublishResult> {
    if (this.closedForGood) return Promise.reject(new GatehouseError("closed", "the client is closed", { room: room.name }));
    if (data === undefined || data === null) return Promise.reject(badRequest("publish(data): data must be a JSON value other than null"));
    if (!room.isWanted) return Promise.reject(new GatehouseError("not_joined", `publish: join ${room.name} first`, { room: room.name }));
    let frame: string;
    try {
      frame = this.encode({ op: "publish", room: room.name, data });
    } catch (e) {
      return Promise.reject(e);
    }
    // The id spliced in later adds `"id":N,` (at most 24 bytes).
    const bytes = utf8Length(frame, Number.MAX_SAFE_INTEGER) + 24;
    if (bytes > this.maxMessageBytes) {
      return Promise.reject(new GatehouseError("payload_too_large", `publish: the frame is about ${bytes} bytes; the node takes at most ${this.maxMessageBytes}`, { room: room.name }));
    }
    return new Promise<PublishResult>((resolve, reject) => {
      const entry: PublishEntry = { room, frame, bytes, resolve, reject };
      if (room.canSend() && !this.outbox.some((e) => e.room === room)) {
        this.sendPublish(entry);
        return;
      }
      if (this.outbox.length >= this.outboxMax || this.outboxBytes + bytes > this.outboxMaxBytes) {
        const err = new GatehouseError(
          "outbox_full",
          `publish to ${room.name} while not connected: the outbox is full (${this.outbox.length} of ${this.outboxMax} messages, ${this.outboxBytes} of ${this.outboxMaxBytes} bytes)`,
          { room: room.name },
        );
        this.emit("error", err);
        reject(err);
        return;
      }
      this.outbox.push(entry);
      this.outboxBytes += bytes;
    });
  }

  private sendPublish(entry: PublishEntry): void {
    const room = entry.room;
    entry.clientId = this.welcomeFrame?.client;
    room.unconfirmed.push(entry);
    this.requestInternal(
      {},
      {
        onReply: (f) => room.publishReplied(entry, f),
        onFail: (err) => room.publishFailed(entry, err),
      },
      undefined,
      entry,
    );
  }

  /** How many publishes wait in the outbox. */
  get outboxSize(): number {
    return this.outbox.length;
  }

  // --- The rooms' view of the client ------------------------------------------------------------

  private makeHost(): RoomHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this;
    return {
      get generation() {
        return client.gen;
      },
      get requestTimeoutMs() {
        return client.requestTimeoutMs;
      },
      get iteratorBuffer() {
        return client.iteratorBuffer;
      },
      isConnected: () => this.welcomed && this.ws !== null,
      isClosed: () => this.closedForGood,
      request: (frame, handlers) => this.requestInternal(frame, handlers),
      requestPromise: <R>(frame: Record<string, unknown>) => this.requestPromise<R>(frame),
      publish: (room, data) => this.publish(room, data),
      flushOutbox: (room) => {
        for (const e of [...this.outbox]) {
          if (e.room !== room) continue;
          if (!room.canSend()) break;
          this.outbox.splice(this.outbox.indexOf(e), 1);
          this.outboxBytes -= e.bytes;
          this.sendPublish(e);
        }
      },
      rejectOutbox: (room, err) => {
        for (const e of [...this.outbox]) {
          if (e.room !== room) continue;
          this.outbox.splice(this.outbox.indexOf(e), 1);
          this.outboxBytes -= e.bytes;
          settle(e, undefined, err);
        }
      },
      delivered: (_room, m) => {
        this.counters.delivered++;
        this.emit("message", m);
      },
      gap: (_room, g) => {
        this.counters.gaps++;
        this.emit("gap", g);
      },
      duplicateDropped: () => {
        this.counters.duplicatesDropped++;
      },
      emitError: (err) => this.emit("error", err),
    };
  }
}

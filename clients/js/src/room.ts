import { Emitter } from "./emitter.js";
import { GatehouseError, badRequest } from "./errors.js";
import type {
  HistoryResult,
  JoinResult,
  MessageFrame,
  Position,
  PresenceFrame,
  PresenceMember,
  PresencePage,
  PresenceResult,
  PublishResult,
  ReplyFrame,
  SnapshotFrame,
} from "./protocol.js";

/** Why a room's message stream has a hole the client could not fill. */
export type GapReason =
  /** A rejoin with `since` answered `recovered:false` in the same epoch (history trimmed or expired). */
  | "not_recovered"
  /** The room was re-created without its history (a new epoch): seqs start again. */
  | "epoch_changed"
  /** A message arrived whose seq skips some (the node promises this never happens). */
  | "seq_gap"
  /** A rejoin's replay did not reach the seq its reply announced within `requestTimeoutMs`. */
  | "replay_incomplete";

/**
 * A hole in a room's stream: messages after `before` up to `after` were not delivered and cannot
 * be (refetch what the app needs: `history`, the snapshot or the app's own backend). Delivery
 * goes on with the first message after `after`.
 */
export interface GapEvent {
  room: string;
  reason: GapReason;
  /** The last message delivered before the gap (seq 0 when none was). */
  before: Position;
  /** Where delivery continues: the next message delivered has a seq above `after.seq`. */
  after: Position;
  /** How many messages were missed, when that is known (same epoch); else undefined. */
  missed?: number;
}

/** A snapshot as delivered to the app. */
export interface RoomSnapshot<T = unknown> {
  room: string;
  seq: number;
  epoch: string;
  data: T;
  /**
   * Messages the client had not received that the snapshot stands for (a rejoin replays only
   * what came after the snapshot); 0 when none.
   */
  skipped: number;
}

export interface JoinedEvent {
  room: string;
  result: JoinResult;
  /** True for the automatic rejoin after a reconnect. */
  rejoin: boolean;
}

export interface RoomEvents<T> {
  /** Every message of the room, once, in seq order (duplicates across a resume are dropped). */
  message: MessageFrame<T>;
  snapshot: RoomSnapshot<T>;
  presence_join: PresenceFrame;
  presence_leave: PresenceFrame;
  /** The member list (with `presence: true`): after each (re)join and on every change. */
  members: PresenceMember[];
  gap: GapEvent;
  /** Each successful join, the first and every rejoin. */
  joined: JoinedEvent;
}

export interface JoinOptions {
  /** Subscribe to presence events and keep {@link Room.members} (default false). */
  presence?: boolean;
  /** On the first join, replay up to this many recent messages (a u32). Rejoins use `since`. */
  last?: number;
}

export interface HistoryOptions {
  /** Messages after this position; without it, the latest `limit`. */
  since?: Position;
  /** At most this many (the node's default is 100, capped at its `rooms.history_size`). */
  limit?: number;
}

export interface PresenceOptions {
  /**
   * Members per page (an integer from 1 to 4294967295). Without it the node lists up to 10 000
   * per page; it never lists more than that, nor more than 1 MiB of entries, in one reply.
   */
  limit?: number;
}

export interface PresencePagesOptions extends PresenceOptions {
  /** Start after this cursor: the `next` of a page read earlier. Without it, the first page. */
  after?: string;
}

export interface MessagesOptions {
  /** Messages buffered while the loop is busy; past this the iterator throws `iterator_overflow`. */
  bufferSize?: number;
}

/** A publish on its way: queued in the outbox, or sent and waiting for its reply. */
export interface PublishEntry {
  room: Room;
  frame: string;
  bytes: number;
  resolve: (r: PublishResult) => void;
  reject: (e: GatehouseError) => void;
  /** The client id the publish was sent under (messages `from` it are ours). */
  clientId?: string;
  /** Seq of our own message seen in the stream before the reply came. */
  observedSeq?: number;
  /** The connection it was sent on dropped before its reply. */
  lost?: boolean;
  settled?: boolean;
}

/** What a room needs from its client. */
export interface RoomHost {
  readonly generation: number;
  isConnected(): boolean;
  isClosed(): boolean;
  requestTimeoutMs: number;
  iteratorBuffer: number;
  request(frame: Record<string, unknown>, handlers: RequestHandlers): void;
  publish(room: Room, data: unknown): Promise<PublishResult>;
  flushOutbox(room: Room): void;
  rejectOutbox(room: Room, err: GatehouseError): void;
  delivered(room: Room, m: MessageFrame): void;
  gap(room: Room, g: GapEvent): void;
  duplicateDropped(): void;
  emitError(err: GatehouseError): void;
  requestPromise<R>(frame: Record<string, unknown>): Promise<R>;
}

export interface RequestHandlers {
  onReply(f: ReplyFrame): void;
  /** Timeout, connection lost or client closed. */
  onFail(err: GatehouseError): void;
}

const U32 = 0xffff_ffff;
const PAST_EPOCHS = 8;
/** Presence events kept per outstanding `presence` request (a reply comes within the request timeout). */
const MAX_PRESENCE_WATCH = 100_000;

function isU32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= U32;
}

function serverError(f: ReplyFrame, room: string): GatehouseError {
  const e = f.error ?? { code: "internal", message: "reply without error body" };
  return new GatehouseError(e.code, e.message, { retryAfterMs: e.retry_after_ms, room });
}

/**
 * One room of a client: `client.room(name)`. The room stays joined across reconnects until
 * `leave()`: the client rejoins it with `since` after every reconnect.
 */
export class Room<T = unknown> extends Emitter<RoomEvents<T>> {
  readonly name: string;
  private readonly host: RoomHost;

  // What the app asked for.
  private wanted = false;
  private presenceWanted = false;
  private lastWanted: number | undefined;
  private firstJoin?: { promise: Promise<JoinResult>; resolve: (r: JoinResult) => void; reject: (e: GatehouseError) => void; settled: boolean };
  private lastResult?: JoinResult;

  // The current connection.
  private joinSentOn = -1;
  private joined = false;
  private ready = false;
  private replayTarget = 0;
  private replayTimer: unknown;
  private rejoinRetryTimer: unknown;
  private rejoinFailures = 0;

  // Position: what has been delivered to the app.
  private epoch: string | undefined;
  private lastSeq = 0;
  private hasPosition = false;
  private pastEpochs: string[] = [];
  private lastOwnSeq = 0;

  /** @internal Publishes sent and not yet confirmed, in the order sent. */
  readonly unconfirmed: PublishEntry[] = [];

  private snapshotValue: RoomSnapshot<T> | undefined;
  private readonly memberMap = new Map<string, string>();
  /** Presence events seen while a `presence` request is out, one list per request. */
  private readonly presenceWatchers = new Set<PresenceFrame[]>();
  private readonly iterators = new Set<MessageIteratorImpl<T>>();

  /** @internal Created by `client.room(name)`. */
  constructor(host: RoomHost, name: string) {
    super();
    this.host = host;
    this.name = name;
  }

  /** The last message delivered (or the join point): `{seq, epoch}`; undefined before the first join. */
  get position(): Position | undefined {
    return this.hasPosition && this.epoch !== undefined ? { seq: this.lastSeq, epoch: this.epoch } : undefined;
  }

  /** Whether the room is joined on the current connection and its replay is delivered. */
  get isJoined(): boolean {
    return this.ready;
  }

  /** Whether the app has joined the room (and not left it), connected or not. */
  get isWanted(): boolean {
    return this.wanted;
  }

  /** The latest snapshot received, if any. */
  get snapshot(): RoomSnapshot<T> | undefined {
    return this.snapshotValue;
  }

  /** The members (with `presence: true`), sorted by client id. */
  get members(): PresenceMember[] {
    return [...this.memberMap].map(([client, user]) => ({ client, user })).sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
  }

  /**
   * Joins the room (now, or as soon as the client is connected) and keeps it joined across
   * reconnects until {@link leave}. Resolves with the first join's result; rejects if the node
   * refuses it (`forbidden`, `room_invalid`, `too_many_rooms`, `unavailable`, …). Calling it again
   * while joined returns the same result.
   */
  join(options: JoinOptions = {}): Promise<JoinResult> {
    if (options === null || typeof options !== "object") return Promise.reject(badRequest("join(options): options must be an object"));
    for (const k of Object.keys(options)) {
      if (k !== "presence" && k !== "last") return Promise.reject(badRequest(`join(options): unknown option '${k}' (presence, last)`));
    }
    if (options.presence !== undefined && typeof options.presence !== "boolean") {
      return Promise.reject(badRequest("join(options): presence must be a boolean"));
    }
    if (options.last !== undefined && !isU32(options.last)) {
      return Promise.reject(badRequest("join(options): last must be an integer from 0 to 4294967295"));
    }
    if (this.host.isClosed()) return Promise.reject(new GatehouseError("closed", "the client is closed", { room: this.name }));
    if (this.wanted) {
      if (this.firstJoin && !this.firstJoin.settled) return this.firstJoin.promise;
      return Promise.resolve(this.lastResult!);
    }
    this.wanted = true;
    this.presenceWanted = options.presence ?? false;
    this.lastWanted = options.last;
    this.hasPosition = false;
    this.epoch = undefined;
    this.lastSeq = 0;
    this.lastOwnSeq = 0;
    let resolve!: (r: JoinResult) => void;
    let reject!: (e: GatehouseError) => void;
    const promise = new Promise<JoinResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.firstJoin = { promise, resolve, reject, settled: false };
    if (this.host.isConnected()) this.sendJoin();
    return promise;
  }

  /** Leaves the room: no more messages; queued publishes for it are rejected (`not_joined`). */
  async leave(): Promise<void> {
    if (!this.wanted) return;
    const wasJoinedHere = this.joined && this.joinSentOn === this.host.generation && this.host.isConnected();
    this.wanted = false;
    this.reset(new GatehouseError("not_joined", `left room ${this.name}`, { room: this.name }));
    if (wasJoinedHere) {
      await this.host.requestPromise({ op: "leave", room: this.name });
    }
  }

  /**
   * Publishes `data` (any JSON value but `null`). Resolves with the seq the room gave it.
   * While disconnected (or rejoining) the publish waits in the client's bounded outbox and is
   * sent after the rejoin; see the package README for the delivery guarantee.
   */
  publish(data: T): Promise<PublishResult> {
    return this.host.publish(this as Room, data);
  }

  /** The room's history (§3 `history`); needs the room joined and the client connected. */
  history(options: HistoryOptions = {}): Promise<HistoryResult<T>> {
    const frame: Record<string, unknown> = { op: "history", room: this.name };
    if (options === null || typeof options !== "object") return Promise.reject(badRequest("history(options): options must be an object"));
    if (options.since !== undefined) {
      const s = options.since;
      if (!s || typeof s !== "object" || !isU32OrSafe(s.seq) || typeof s.epoch !== "string") {
        return Promise.reject(badRequest("history(options): since must be {seq: integer >= 0, epoch: string}"));
      }
      frame.since = { seq: s.seq, epoch: s.epoch };
    }
    if (options.limit !== undefined) {
      if (!isU32(options.limit)) return Promise.reject(badRequest("history(options): limit must be an integer from 0 to 4294967295"));
      frame.limit = options.limit;
    }
    return this.host.requestPromise<HistoryResult<T>>(frame);
  }

  /**
   * Who is in the room now (§3 `presence`): every member, sorted by client id, read page by page
   * (one request per page, each following the previous page's `next` cursor). A room's list may
   * change between two pages: a member that joins or leaves meanwhile may be listed or not, but
   * nobody is listed twice, and with `presence: true` {@link Room.members} applies the events that
   * arrived while the pages were read. For a very large room, {@link presencePages} reads the
   * same pages without holding them all. Needs the room joined and the client connected.
   */
  async presence(options: PresenceOptions = {}): Promise<PresenceResult> {
    const pages = this.pagesOf(options, "presence(options)");
    // Presence events that arrive while the requests are out may be older or newer than their
    // replies (events and replies travel apart): the pages are the base, then those events
    // apply again.
    const since: PresenceFrame[] = [];
    this.presenceWatchers.add(since);
    try {
      const members: PresenceMember[] = [];
      for await (const page of pages) {
        for (const m of page.members) members.push(m);
      }
      const r: PresenceResult = { room: this.name, count: members.length, members };
      if (this.presenceWanted && this.wanted) {
        this.memberMap.clear();
        for (const m of members) this.memberMap.set(m.client, m.user);
        for (const e of since) this.applyPresence(e);
        this.emit("members", this.members);
      }
      return r;
    } finally {
      this.presenceWatchers.delete(since);
    }
  }

  /**
   * The room's members one page at a time (§3 `presence`), as an async iterator:
   * `for await (const page of room.presencePages({ limit: 500 }))`. Each page is one request; the
   * next is asked for only when the loop wants it, following the previous page's `next` cursor,
   * and the iterator ends after the page whose `next` is `null`. Bad options throw `bad_request`
   * at once; a failed request (`not_joined`, `unavailable`, `timeout`, …) rejects the loop's
   * `next()`. A node older than paged presence answers everything on one page.
   */
  presencePages(options: PresencePagesOptions = {}): AsyncIterableIterator<PresencePage> {
    return this.pagesOf(options, "presencePages(options)");
  }

  private pagesOf(options: PresencePagesOptions, what: string): AsyncIterableIterator<PresencePage> {
    if (options === null || typeof options !== "object") throw badRequest(`${what}: options must be an object`);
    const { limit, after } = options;
    if (limit !== undefined && (!isU32(limit) || limit === 0)) {
      throw badRequest(`${what}: limit must be an integer from 1 to 4294967295`);
    }
    if (after !== undefined && (typeof after !== "string" || after === "")) {
      throw badRequest(`${what}: after must be the next cursor of an earlier page`);
    }
    return this.readPresencePages(after, limit);
  }

  private async *readPresencePages(after: string | undefined, limit: number | undefined): AsyncGenerator<PresencePage, void, undefined> {
    let cursor = after;
    for (;;) {
      const frame: Record<string, unknown> = { op: "presence", room: this.name };
      if (cursor !== undefined) frame.after = cursor;
      if (limit !== undefined) frame.limit = limit;
      const r = await this.host.requestPromise<Partial<PresencePage>>(frame);
      const members = Array.isArray(r.members) ? r.members : [];
      // A node older than paged presence sends no `next`: its one reply lists everyone.
      const next = typeof r.next === "string" ? r.next : null;
      yield { room: typeof r.room === "string" ? r.room : this.name, count: members.length, members, next };
      if (next === null) return;
      if (next === cursor) {
        throw new GatehouseError("internal", `presence of ${this.name}: the node answered the cursor it was asked with`, { room: this.name });
      }
      cursor = next;
    }
  }

  /** Calls `handler` with every message of the room; returns the function that stops it. */
  onMessage(handler: (m: MessageFrame<T>) => void): () => void {
    return this.on("message", handler);
  }

  /**
   * The room's messages as an async iterator (`for await (const m of room.messages())`). Its
   * buffer is bounded: a loop that falls `bufferSize` (default: the client's `iteratorBuffer`,
   * 1000) messages behind gets an `iterator_overflow` error instead of a silent loss. The
   * iterator ends when the room is left or the client closes.
   */
  messages(options: MessagesOptions = {}): AsyncIterableIterator<MessageFrame<T>> {
    const size = options.bufferSize ?? this.host.iteratorBuffer;
    if (!Number.isInteger(size) || size < 1) throw badRequest("messages(options): bufferSize must be a positive integer");
    const it = new MessageIteratorImpl<T>(this.name, size, () => this.iterators.delete(it));
    this.iterators.add(it);
    return it;
  }

  // --- Driven by the client ------------------------------------------------------------------

  /** @internal The client is connected: (re)join if wanted. */
  onConnected(): void {
    if (this.wanted) this.sendJoin();
  }

  /** @internal The connection dropped. */
  onConnectionLost(): void {
    this.joined = false;
    this.ready = false;
    this.clearTimers();
    for (const e of this.unconfirmed) e.lost = true;
  }

  /** @internal The client is closed for good. */
  onClosed(err: GatehouseError): void {
    this.wanted = false;
    this.reset(err);
  }

  /** @internal Whether publishes may be sent now (joined and replay delivered). */
  canSend(): boolean {
    return this.wanted && this.ready && this.host.isConnected();
  }

  private sendJoin(): void {
    const gen = this.host.generation;
    if (this.joinSentOn === gen) return;
    this.joinSentOn = gen;
    this.joined = false;
    this.ready = false;
    const since = this.hasPosition && this.epoch !== undefined ? { seq: this.lastSeq, epoch: this.epoch } : undefined;
    const frame: Record<string, unknown> = { op: "join", room: this.name };
    // Batched where the node can (a busy room's events come one frame per tick); `presence`
    // too, so a node that does not know `presence_batch` sends them one by one.
    if (this.presenceWanted) {
      frame.presence = true;
      frame.presence_batch = true;
    }
    if (since) frame.since = since;
    else if (this.lastWanted !== undefined) frame.last = this.lastWanted;
    this.host.request(frame, {
      onReply: (f) => {
        if (gen !== this.host.generation) return;
        if (f.ok) this.onJoined((f.result ?? {}) as unknown as JoinResult, since);
        else this.onJoinRefused(serverError(f, this.name), since !== undefined);
      },
      onFail: (err) => {
        if (gen !== this.host.generation || !this.wanted) return;
        if (err.code === "timeout") {
          // No answer on a live connection: ask again (an `already_joined` answer is handled).
          this.joinSentOn = -1;
          this.scheduleRejoin(err);
        }
        // connection_lost: the next connection rejoins; closed: onClosed rejects.
      },
    });
  }

  private scheduleRejoin(err: GatehouseError): void {
    this.rejoinFailures++;
    const delay = Math.min(30_000, err.retryAfterMs ?? 1000 * Math.min(2 ** (this.rejoinFailures - 1), 30));
    const gen = this.host.generation;
    this.rejoinRetryTimer = setTimeout(() => {
      this.rejoinRetryTimer = undefined;
      if (gen === this.host.generation && this.wanted && this.host.isConnected()) {
        this.joinSentOn = -1;
        this.sendJoin();
      }
    }, delay);
  }

  private onJoinRefused(err: GatehouseError, rejoin: boolean): void {
    if (!this.wanted) return;
    if (!rejoin && this.firstJoin && !this.firstJoin.settled) {
      // The app's own join: it decides (retry on `unavailable`, show `forbidden`, …).
      this.wanted = false;
      this.reset(err);
      return;
    }
    if (err.code === "unavailable" || err.code === "rate_limited") {
      // The room is moving or being re-created, or the rejoin burst hit the rate limit: retry.
      this.scheduleRejoin(err);
      this.emitError(err);
      return;
    }
    // forbidden (a new token without this room), too_many_rooms, …: the room is dropped.
    this.wanted = false;
    this.reset(err);
    this.emitError(err);
  }

  private emitError(err: GatehouseError): void {
    this.host.emitError(err);
  }

  private onJoined(result: JoinResult, since: Position | undefined): void {
    if (!this.wanted) {
      // Left while the join was on its way.
      this.host.request({ op: "leave", room: this.name }, { onReply: () => {}, onFail: () => {} });
      return;
    }
    this.joined = true;
    this.rejoinFailures = 0;
    this.lastResult = result;
    if (result.already_joined) {
      // Only after a timed-out join that the node did apply: its seq is what it has delivered.
      this.replayTarget = this.lastSeq;
    } else if (since) {
      if (result.recovered === true && result.epoch === since.epoch) {
        this.replayTarget = result.seq;
      } else {
        const sameEpoch = result.epoch === since.epoch;
        this.setGap({
          room: this.name,
          reason: sameEpoch ? "not_recovered" : "epoch_changed",
          before: since,
          after: { epoch: result.epoch, seq: result.seq },
          missed: sameEpoch ? Math.max(0, result.seq - since.seq) : undefined,
        });
        if (!sameEpoch) this.rememberEpoch(since.epoch);
        this.epoch = result.epoch;
        this.lastSeq = result.seq;
        this.lastOwnSeq = result.seq;
        this.replayTarget = result.seq;
        this.failLost("the room was not recovered after the reconnect");
      }
    } else {
      this.epoch = result.epoch;
      this.lastSeq = Math.max(0, result.seq - (result.replayed ?? 0));
      this.lastOwnSeq = this.lastSeq;
      this.hasPosition = true;
      this.replayTarget = result.seq;
    }
    this.emit("joined", { room: this.name, result, rejoin: since !== undefined });
    if (this.firstJoin && !this.firstJoin.settled) {
      this.firstJoin.settled = true;
      this.firstJoin.resolve(result);
    }
    this.checkReady();
  }

  private checkReady(): void {
    if (!this.joined || this.ready || !this.wanted) return;
    if (this.lastSeq >= this.replayTarget) {
      this.ready = true;
      if (this.replayTimer !== undefined) {
        clearTimeout(this.replayTimer);
        this.replayTimer = undefined;
      }
      // Publishes in flight when the last connection dropped that the replay did not show.
      this.failLost("the connection dropped before the reply and the replay did not show the message");
      if (this.presenceWanted) {
        this.presence().catch(() => {
          /* the next rejoin refreshes it */
        });
      }
      this.host.flushOutbox(this as Room);
      return;
    }
    if (this.replayTimer === undefined) {
      const gen = this.host.generation;
      this.replayTimer = setTimeout(() => {
        this.replayTimer = undefined;
        if (gen !== this.host.generation || this.ready || !this.joined) return;
        this.setGap({
          room: this.name,
          reason: "replay_incomplete",
          before: { epoch: this.epoch ?? "", seq: this.lastSeq },
          after: { epoch: this.epoch ?? "", seq: this.replayTarget },
          missed: this.replayTarget - this.lastSeq,
        });
        this.lastSeq = this.replayTarget;
        this.checkReady();
      }, this.host.requestTimeoutMs);
    }
  }

  /** @internal A `message` frame for this room. */
  handleMessage(f: MessageFrame): void {
    if (!this.wanted || !this.hasPosition) return;
    if (typeof f.seq !== "number" || typeof f.epoch !== "string") return;
    if (f.epoch !== this.epoch) {
      if (this.pastEpochs.includes(f.epoch)) {
        this.host.duplicateDropped();
        return;
      }
      // The room was re-created under this connection (owner lost with its replica).
      const before = { epoch: this.epoch ?? "", seq: this.lastSeq };
      this.rememberEpoch(this.epoch);
      this.epoch = f.epoch;
      this.lastSeq = 0;
      this.lastOwnSeq = 0;
      this.replayTarget = 0;
      this.setGap({ room: this.name, reason: "epoch_changed", before, after: { epoch: f.epoch, seq: Math.max(0, f.seq - 1) } });
      this.failLost("the room was re-created (new epoch)");
      this.lastSeq = Math.max(0, f.seq - 1);
    }
    if (f.seq <= this.lastSeq) {
      this.host.duplicateDropped();
      return;
    }
    if (f.seq > this.lastSeq + 1) {
      this.setGap({
        room: this.name,
        reason: "seq_gap",
        before: { epoch: f.epoch, seq: this.lastSeq },
        after: { epoch: f.epoch, seq: f.seq - 1 },
        missed: f.seq - this.lastSeq - 1,
      });
    }
    this.lastSeq = f.seq;
    this.attributeOwn(f);
    const m = f as MessageFrame<T>;
    this.emit("message", m);
    for (const it of [...this.iterators]) it.push(m);
    this.host.delivered(this as Room, f);
    this.checkReady();
  }

  /** @internal A `snapshot` frame for this room. */
  handleSnapshot(f: SnapshotFrame): void {
    if (!this.wanted) return;
    let skipped = 0;
    if (f.epoch === this.epoch && typeof f.seq === "number" && f.seq > this.lastSeq) {
      skipped = f.seq - this.lastSeq;
      this.lastSeq = f.seq;
      this.lastOwnSeq = Math.max(this.lastOwnSeq, f.seq);
    }
    const s: RoomSnapshot<T> = { room: this.name, seq: f.seq, epoch: f.epoch, data: f.data as T, skipped };
    this.snapshotValue = s;
    this.emit("snapshot", s);
    this.checkReady();
  }

  /** @internal A presence event for this room. */
  handlePresence(f: PresenceFrame): void {
    if (!this.wanted) return;
    this.applyPresence(f);
    for (const w of this.presenceWatchers) if (w.length < MAX_PRESENCE_WATCH) w.push(f);
    this.emit(f.op, f);
    if (this.presenceWanted) this.emit("members", this.members);
  }

  private applyPresence(f: PresenceFrame): void {
    if (f.op === "presence_join") this.memberMap.set(f.client, f.user);
    else this.memberMap.delete(f.client);
  }

  /** @internal Our own publish's reply. */
  publishReplied(entry: PublishEntry, f: ReplyFrame): void {
    this.dropUnconfirmed(entry);
    if (f.ok) {
      const seq = Number((f.result as { seq?: unknown } | undefined)?.seq);
      if (Number.isFinite(seq)) this.lastOwnSeq = Math.max(this.lastOwnSeq, seq);
      settle(entry, { seq });
    } else {
      settle(entry, undefined, serverError(f, this.name));
    }
  }

  /** @internal Our own publish failed without a reply on a live connection (timeout). */
  publishFailed(entry: PublishEntry, err: GatehouseError): void {
    this.dropUnconfirmed(entry);
    settle(entry, undefined, err);
  }

  private setGap(g: GapEvent): void {
    this.emit("gap", g);
    this.host.gap(this as Room, g);
  }

  private rememberEpoch(e: string | undefined): void {
    if (e === undefined || this.pastEpochs.includes(e)) return;
    this.pastEpochs.push(e);
    if (this.pastEpochs.length > PAST_EPOCHS) this.pastEpochs.shift();
  }

  /** Matches our own messages to publishes whose reply was lost (or has not come yet). */
  private attributeOwn(f: MessageFrame): void {
    const from = f.from?.client;
    if (!from || f.seq <= this.lastOwnSeq) return;
    const e = this.unconfirmed.find((x) => x.observedSeq === undefined && x.clientId === from);
    if (!e) return;
    e.observedSeq = f.seq;
    this.lastOwnSeq = f.seq;
    if (e.lost) {
      this.dropUnconfirmed(e);
      settle(e, { seq: f.seq });
    }
  }

  private dropUnconfirmed(e: PublishEntry): void {
    const i = this.unconfirmed.indexOf(e);
    if (i >= 0) this.unconfirmed.splice(i, 1);
  }

  /** Rejects the publishes whose connection dropped and whose message was not seen. */
  private failLost(why: string): void {
    for (const e of [...this.unconfirmed]) {
      if (!e.lost) continue;
      this.dropUnconfirmed(e);
      if (e.observedSeq !== undefined) settle(e, { seq: e.observedSeq });
      else settle(e, undefined, new GatehouseError("unknown_outcome", `publish to ${this.name}: ${why}; it was not re-sent`, { room: this.name }));
    }
  }

  private clearTimers(): void {
    if (this.replayTimer !== undefined) clearTimeout(this.replayTimer);
    if (this.rejoinRetryTimer !== undefined) clearTimeout(this.rejoinRetryTimer);
    this.replayTimer = undefined;
    this.rejoinRetryTimer = undefined;
  }

  /** Forgets everything of the current membership; `err` goes to whatever waits on it. */
  private reset(err: GatehouseError): void {
    this.clearTimers();
    this.joined = false;
    this.ready = false;
    this.joinSentOn = -1;
    this.hasPosition = false;
    this.memberMap.clear();
    if (this.firstJoin && !this.firstJoin.settled) {
      this.firstJoin.settled = true;
      this.firstJoin.reject(err);
    }
    this.firstJoin = undefined;
    this.host.rejectOutbox(this as Room, err);
    for (const e of [...this.unconfirmed]) {
      if (!e.lost) continue; // a live request still gets its reply
      this.dropUnconfirmed(e);
      if (e.observedSeq !== undefined) settle(e, { seq: e.observedSeq });
      else settle(e, undefined, new GatehouseError("unknown_outcome", `publish to ${this.name}: the connection dropped before its reply (${err.message})`, { room: this.name }));
    }
    for (const it of [...this.iterators]) it.end();
  }
}

function isU32OrSafe(v: unknown): boolean {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

export function settle(e: PublishEntry, ok?: PublishResult, err?: GatehouseError): void {
  if (e.settled) return;
  e.settled = true;
  if (err) e.reject(err);
  else e.resolve(ok!);
}

class MessageIteratorImpl<T> implements AsyncIterableIterator<MessageFrame<T>> {
  private queue: MessageFrame<T>[] = [];
  private waiter?: { resolve: (r: IteratorResult<MessageFrame<T>>) => void; reject: (e: unknown) => void };
  private done = false;
  private error?: GatehouseError;

  constructor(
    private readonly room: string,
    private readonly size: number,
    private readonly detach: () => void,
  ) {}

  push(m: MessageFrame<T>): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: m, done: false });
      return;
    }
    if (this.queue.length >= this.size) {
      this.error = new GatehouseError(
        "iterator_overflow",
        `messages() of ${this.room}: more than ${this.size} messages waited for the loop; read faster or raise bufferSize`,
        { room: this.room },
      );
      this.done = true;
      this.detach();
      return;
    }
    this.queue.push(m);
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<MessageFrame<T>>> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve({ value: m, done: false });
    if (this.error) {
      const e = this.error;
      this.error = undefined;
      return Promise.reject(e);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<MessageFrame<T>>> {
    this.queue = [];
    this.error = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<MessageFrame<T>> {
    return this;
  }
}

/**
 * Wire types of Gatehouse client protocol v1 (docs/protocol.md in the Gatehouse repository).
 * One JSON object per text frame, in both directions.
 */

/** The protocol version this package speaks; the package's major version tracks it. */
export const PROTOCOL_VERSION = 1;

/** The subprotocol the client offers (the node selects it). */
export const SUBPROTOCOL = "gatehouse.v1";

/** A position in a room: the seq of the last message seen, in an epoch. */
export interface Position {
  seq: number;
  epoch: string;
}

/** Who sent a message: a client (`client`, `user`) or the backend (`backend: true`). */
export interface From {
  client?: string;
  user?: string;
  backend?: boolean;
}

/** Limits the node applies to this connection, from `welcome`. */
export interface WelcomeLimits {
  max_message_bytes: number;
  max_rooms: number;
  msgs_per_sec: number;
  burst: number;
  /** Inbound bytes per second (absent from nodes before 2026-12). */
  bytes_per_sec?: number;
  /** Rooms this connection may create per second (absent from older nodes). */
  room_creates_per_sec?: number;
  /** Room-creation burst (absent from older nodes). */
  room_creates_burst?: number;
}

export interface WelcomeFrame {
  op: "welcome";
  protocol: number;
  client: string;
  user: string;
  node: string;
  session: string;
  heartbeat_ms: number;
  limits: WelcomeLimits;
}

export interface ErrorBody {
  code: string;
  message: string;
  retry_after_ms?: number;
}

export interface ReplyFrame {
  op: "reply";
  id: number | string;
  ok: boolean;
  result?: Record<string, unknown>;
  error?: ErrorBody;
}

export interface ErrorFrame extends ErrorBody {
  op: "error";
}

export interface MessageFrame<T = unknown> {
  op: "message";
  room: string;
  seq: number;
  epoch: string;
  from: From;
  data: T;
}

export interface SnapshotFrame<T = unknown> {
  op: "snapshot";
  room: string;
  seq: number;
  epoch: string;
  data: T;
}

export interface PresenceFrame {
  op: "presence_join" | "presence_leave";
  room: string;
  client: string;
  user: string;
}

/** A room's presence events of one tick, in order (§4 `presence_batch`; asked with `presence_batch: true`). */
export interface PresenceBatchFrame {
  op: "presence_batch";
  room: string;
  events: PresenceFrame[];
}

export interface DirectFrame<T = unknown> {
  op: "direct";
  data: T;
}

export interface PongFrame {
  op: "pong";
}

export interface ReconnectFrame {
  op: "reconnect";
  reason: string;
  after_ms: [number, number];
}

export interface DisconnectFrame {
  op: "disconnect";
  code: number;
  reason: string;
  reconnect: boolean;
}

/** Any server frame; `op` values this package does not know arrive as `UnknownFrame`. */
export type ServerFrame =
  | WelcomeFrame
  | ReplyFrame
  | ErrorFrame
  | MessageFrame
  | SnapshotFrame
  | PresenceFrame
  | DirectFrame
  | PongFrame
  | ReconnectFrame
  | DisconnectFrame;

export interface UnknownFrame {
  op: string;
  [key: string]: unknown;
}

/** Result of a `join` (§3). */
export interface JoinResult {
  room: string;
  epoch: string;
  seq: number;
  members: number;
  /** Present only when the join carried `since`. */
  recovered?: boolean;
  /** Present with `since` or `last`: how many `message` frames were replayed. */
  replayed?: number;
  already_joined?: boolean;
}

export interface PresenceMember {
  client: string;
  user: string;
}

/** Result of `room.presence()`: every member, read across as many pages as the room needs. */
export interface PresenceResult {
  room: string;
  /** The members listed (`members.length`). */
  count: number;
  members: PresenceMember[];
}

/** One reply to the `presence` op (§3): a page of members, in client id order. */
export interface PresencePage {
  room: string;
  /** The members on this page (`members.length`), not the room's size. */
  count: number;
  members: PresenceMember[];
  /** The cursor of the next page (pass it as `after`); `null` on the last page. */
  next: string | null;
}

export interface HistoryResult<T = unknown> {
  room: string;
  epoch: string;
  seq: number;
  recovered: boolean;
  messages: MessageFrame<T>[];
}

export interface PublishResult {
  seq: number;
}

/** Room names: 1–128 characters from `A–Z a–z 0–9 _ . : @ -` (§6). */
export const ROOM_NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** Close codes the node uses (§9). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  POLICY: 1008,
  TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  TOKEN_EXPIRED: 4001,
  KICKED: 4003,
  SLOW_CONSUMER: 4008,
  HEARTBEAT_TIMEOUT: 4009,
} as const;

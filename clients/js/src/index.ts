/**
 * @gatehouse/client: the browser and Node.js client of Gatehouse (client protocol v1).
 *
 * ```ts
 * import { connect } from "@gatehouse/client";
 * const client = connect("wss://gatehouse.example.com/ws", { getToken: () => fetchJwt() });
 * const lobby = client.room("chat:lobby");
 * lobby.onMessage((m) => console.log(m.seq, m.data));
 * await lobby.join({ presence: true });
 * await lobby.publish({ text: "hi" });
 * ```
 */
export { connect, GatehouseClient } from "./client.js";
export type {
  ClientEvents,
  ClientStats,
  ConnectOptions,
  ConnectedEvent,
  ConnectionState,
  DisconnectedEvent,
  ReconnectCause,
  ReconnectingEvent,
} from "./client.js";
export { Room } from "./room.js";
export type {
  GapEvent,
  GapReason,
  HistoryOptions,
  JoinOptions,
  JoinedEvent,
  MessagesOptions,
  PresenceOptions,
  PresencePagesOptions,
  RoomEvents,
  RoomSnapshot,
} from "./room.js";
export { GatehouseError } from "./errors.js";
export type { ClientErrorCode } from "./errors.js";
export { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, MAX_RECONNECT_WINDOW_MS, windowDelay } from "./backoff.js";
export type { Backoff, BackoffOptions } from "./backoff.js";
export { CloseCode, PROTOCOL_VERSION, ROOM_NAME, SUBPROTOCOL } from "./protocol.js";
export type {
  DirectFrame,
  DisconnectFrame,
  ErrorBody,
  ErrorFrame,
  From,
  HistoryResult,
  JoinResult,
  MessageFrame,
  PongFrame,
  Position,
  PresenceBatchFrame,
  PresenceFrame,
  PresenceMember,
  PresencePage,
  PresenceResult,
  PublishResult,
  ReconnectFrame,
  ReplyFrame,
  ServerFrame,
  SnapshotFrame,
  UnknownFrame,
  WelcomeFrame,
  WelcomeLimits,
} from "./protocol.js";
export type { WebSocketConstructor, WebSocketLike } from "./transport.js";

/**
 * Codes of errors the client itself produces. Errors the node answers keep the node's code
 * (`rate_limited`, `unavailable`, `forbidden`, `not_joined`, `room_invalid`, …; §7).
 */
export type ClientErrorCode =
  /** A request got no reply within `requestTimeoutMs`. */
  | "timeout"
  /** The connection closed before a reply came (the request may or may not have been handled). */
  | "connection_lost"
  /**
   * A publish was in flight when the connection dropped, and the rejoin could not show whether
   * the room applied it (not recovered, or the room's epoch changed). It is not re-sent.
   */
  | "unknown_outcome"
  /** The bounded outbox is full: the publish was not queued. */
  | "outbox_full"
  /** The client was closed (by `close()` or by a close code that stops it). */
  | "closed"
  /** A frame would exceed the node's `max_message_bytes` (the node would close with 1009). */
  | "payload_too_large"
  /** Bad arguments to a client method. */
  | "bad_request"
  /** An async iterator's bounded buffer overflowed because it was not read fast enough. */
  | "iterator_overflow"
  /** `getToken` threw or returned something that is not a non-empty string. */
  | "token_refresh_failed"
  /** The node closed with 4001 (token expired) and there is no `getToken` to get a new one. */
  | "token_expired"
  /** A server frame that is not a JSON object. */
  | "bad_frame"
  /** A `reply` with an id this client never sent or already settled. */
  | "unexpected_reply";

/** An error from the node or from the client. `code` is machine-readable. */
export class GatehouseError extends Error {
  /** The node's error code (§7) or a {@link ClientErrorCode}. */
  readonly code: string;
  /** For `rate_limited` and `unavailable`: how long to wait before trying again. */
  readonly retryAfterMs?: number;
  /** The room the failed operation was about, when there is one. */
  readonly room?: string;

  constructor(code: string, message: string, extra: { retryAfterMs?: number; room?: string } = {}) {
    super(message);
    this.name = "GatehouseError";
    this.code = code;
    if (extra.retryAfterMs !== undefined) this.retryAfterMs = extra.retryAfterMs;
    if (extra.room !== undefined) this.room = extra.room;
  }
}

export function badRequest(message: string): GatehouseError {
  return new GatehouseError("bad_request", message);
}

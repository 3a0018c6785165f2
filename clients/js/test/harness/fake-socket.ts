/**
 * A stand-in for the platform's WebSocket in unit tests (the transport, not a Gatehouse
 * component): the test plays the node's side, frame by frame, with fake timers.
 */
import type { WebSocketConstructor } from "@gatehouse/client";

export interface Frame {
  op: string;
  id?: number;
  [k: string]: unknown;
}

export class FakeSocket {
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly sent: Frame[] = [];
  closedByClient?: { code?: number; reason?: string };

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}

  send(text: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(text) as Frame);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 2;
  }

  // --- The node's side ---------------------------------------------------------------------

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  receiveRaw(data: unknown): void {
    this.onmessage?.({ data });
  }

  /** Opens and sends `welcome`. */
  welcome(client = "c_AAAAAAAAAAAAAAAA", session = "sess-1", extra: Record<string, unknown> = {}): void {
    this.open();
    this.receive({
      op: "welcome",
      protocol: 1,
      client,
      user: "u-1",
      node: "node-a",
      session,
      heartbeat_ms: 15000,
      limits: { max_message_bytes: 65536, max_rooms: 128, msgs_per_sec: 100, burst: 200 },
      ...extra,
    });
  }

  /** The node closes: optional `disconnect` frame first, then the close. */
  serverClose(code: number, reason = "", farewell?: { reconnect: boolean }): void {
    if (farewell) this.receive({ op: "disconnect", code, reason, reconnect: farewell.reconnect });
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** A connection that fails before the upgrade (refused, 503, 401): the browser says 1006. */
  fail(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: "" });
  }

  /** Frames the client sent with this op. */
  ops(op: string): Frame[] {
    return this.sent.filter((f) => f.op === op);
  }

  last(op: string): Frame {
    const f = this.ops(op).at(-1);
    if (!f) throw new Error(`no ${op} sent; sent: ${JSON.stringify(this.sent)}`);
    return f;
  }

  reply(req: Frame, result: Record<string, unknown>): void {
    this.receive({ op: "reply", id: req.id, ok: true, result });
  }

  replyError(req: Frame, code: string, message: string, retry_after_ms?: number): void {
    const error: Record<string, unknown> = { code, message };
    if (retry_after_ms !== undefined) error.retry_after_ms = retry_after_ms;
    this.receive({ op: "reply", id: req.id, ok: false, error });
  }

  message(room: string, seq: number, epoch: string, data: unknown, from: Record<string, unknown> = { client: "c_OTHER0000000000", user: "u-2" }): void {
    this.receive({ op: "message", room, seq, epoch, from, data });
  }
}

/** A WebSocket constructor whose instances the test can reach. */
export function fakeWebSocket(): { WebSocket: WebSocketConstructor; sockets: FakeSocket[]; latest(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  class WS extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols === undefined ? [] : Array.isArray(protocols) ? protocols : [protocols]);
      sockets.push(this);
    }
  }
  return {
    WebSocket: WS as unknown as WebSocketConstructor,
    sockets,
    latest() {
      const s = sockets.at(-1);
      if (!s) throw new Error("no socket opened yet");
      return s;
    },
  };
}

/** Lets pending promise callbacks run (fake timers do not drive microtasks). */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

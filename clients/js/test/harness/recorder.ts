/** What a client saw, for assertions: events in order, messages per room, state changes. */
import type { GapEvent, GatehouseClient, MessageFrame, ReconnectingEvent, DisconnectedEvent, ConnectedEvent } from "@gatehouse/client";

export class Recorder {
  readonly states: string[] = [];
  readonly connected: ConnectedEvent[] = [];
  readonly disconnected: DisconnectedEvent[] = [];
  readonly reconnecting: ReconnectingEvent[] = [];
  readonly gaps: GapEvent[] = [];
  readonly errors: { code: string; message: string }[] = [];
  readonly messages = new Map<string, MessageFrame[]>();

  constructor(readonly client: GatehouseClient) {
    client.on("state", (s) => this.states.push(s));
    client.on("connected", (e) => this.connected.push(e));
    client.on("disconnected", (e) => this.disconnected.push(e));
    client.on("reconnecting", (e) => this.reconnecting.push(e));
    client.on("gap", (g) => this.gaps.push(g));
    client.on("error", (e) => this.errors.push({ code: e.code, message: e.message }));
    client.on("message", (m) => {
      let list = this.messages.get(m.room);
      if (!list) this.messages.set(m.room, (list = []));
      list.push(m);
    });
  }

  seqs(room: string): number[] {
    return (this.messages.get(room) ?? []).map((m) => m.seq);
  }

  lastSeq(room: string): number {
    const s = this.seqs(room);
    return s.length ? s[s.length - 1]! : 0;
  }
}

/** Checks `seqs` is 1..n without holes, duplicates or reordering; returns a description of what is wrong, or "". */
export function contiguity(seqs: number[], from = 1): string {
  const problems: string[] = [];
  let expect = from;
  for (const s of seqs) {
    if (s !== expect) problems.push(`expected ${expect}, got ${s}`);
    expect = s + 1;
  }
  return problems.slice(0, 10).join("; ");
}

import { GatehouseError } from "./errors.js";

/**
 * The WebSocket the client drives: the WHATWG `WebSocket` of browsers (and of Node.js 22+), or
 * any constructor with the same shape, such as `WebSocket` from the `ws` package on Node.js.
 * Only these members are used.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: any) => any) | null;
  onclose: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The platform's WebSocket, or a clear error saying how to provide one. */
export function defaultWebSocket(): WebSocketConstructor {
  const ws = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof ws !== "function") {
    throw new GatehouseError(
      "bad_request",
      "no WebSocket implementation: this runtime has no global WebSocket. On Node.js, `npm install ws` and pass it: connect(url, { WebSocket }) with `import WebSocket from \"ws\"`",
    );
  }
  return ws as WebSocketConstructor;
}

let decoder: TextDecoder | undefined;

/** The text of a message event's data (the node only sends text frames). */
export function frameText(data: unknown): string | undefined {
  if (typeof data === "string") return data;
  if (data === null || typeof data !== "object") return undefined;
  decoder ??= new TextDecoder("utf-8", { fatal: false });
  // ArrayBuffer, typed arrays and Node's Buffer all decode.
  try {
    return decoder.decode(data);
  } catch {
    return undefined;
  }
}

let encoder: TextEncoder | undefined;

/** UTF-8 length of a string (exact; cheap when the string is short enough not to matter). */
export function utf8Length(text: string, limit: number): number {
  // Every UTF-16 code unit is at most 3 UTF-8 bytes.
  if (text.length * 3 <= limit) return text.length;
  encoder ??= new TextEncoder();
  return encoder.encode(text).length;
}

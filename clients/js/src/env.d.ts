// The few platform globals the package uses, present in browsers and Node.js alike. Declared
// here so the package compiles without DOM or Node type libraries (and its emitted .d.ts files
// reference neither).
declare function setTimeout(callback: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare class TextEncoder {
  encode(input: string): { length: number };
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input: unknown): string;
}
declare class URL {
  constructor(url: string, base?: string);
  protocol: string;
  readonly searchParams: { set(name: string, value: string): void; delete(name: string): void };
  toString(): string;
}

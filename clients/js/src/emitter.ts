/** A minimal typed event emitter: `on` returns an unsubscribe function. */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Handler = (payload: any) => void;

/**
 * Reports an exception thrown by an application handler without letting it break the client's
 * own bookkeeping: `reportError` where the platform has it (browsers), else rethrown on a fresh
 * task (Node: an uncaught exception, as an `EventEmitter` listener's throw would be).
 */
export function reportHandlerError(err: unknown): void {
  const g = globalThis as { reportError?: (e: unknown) => void };
  if (typeof g.reportError === "function") {
    g.reportError(err);
    return;
  }
  setTimeout(() => {
    throw err;
  }, 0);
}

export class Emitter<Events> {
  private handlers = new Map<string, Set<Handler>>();

  on<K extends keyof Events & string>(name: K, handler: (payload: Events[K]) => void): () => void;
  on(name: string, handler: Handler): () => void;
  on(name: string, handler: Handler): () => void {
    if (typeof handler !== "function") {
      throw new TypeError(`on(${JSON.stringify(name)}, handler): handler must be a function`);
    }
    let set = this.handlers.get(name);
    if (!set) {
      set = new Set();
      this.handlers.set(name, set);
    }
    // Wrapped so that the same function registered twice is called twice and removed once each.
    const entry: Handler = (p) => handler(p);
    set.add(entry);
    return () => {
      set!.delete(entry);
    };
  }

  once<K extends keyof Events & string>(name: K, handler: (payload: Events[K]) => void): () => void;
  once(name: string, handler: Handler): () => void;
  once(name: string, handler: Handler): () => void {
    const off = this.on(name, (p: unknown) => {
      off();
      handler(p);
    });
    return off;
  }

  /** Number of handlers for `name`. */
  listenerCount(name: string): number {
    return this.handlers.get(name)?.size ?? 0;
  }

  protected emit(name: string, payload: unknown): void {
    const set = this.handlers.get(name);
    if (!set || set.size === 0) return;
    for (const h of [...set]) {
      try {
        h(payload);
      } catch (err) {
        reportHandlerError(err);
      }
    }
  }

  protected removeAll(): void {
    this.handlers.clear();
  }
}

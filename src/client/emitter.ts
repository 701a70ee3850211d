/**
 * A small typed event emitter for the client core (STYLE.md rule 12: no node:events in the core, so the
 * same ChatClient runs in a page). `E` maps each event name to its argument tuple. Listeners run in the
 * order they were added; a `once` listener is removed before it runs. What a listener throws propagates
 * out of `emit` (the facade decides what that means: src/client/chat-client.ts reports it as the
 * application's error). The method names are those of node:events, so `events.once(client, name)` and
 * code written for an EventEmitter work unchanged.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  readonly #listeners = new Map<keyof E, { fn: Listener; once: boolean }[]>();

  on<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    return this.#add(event, fn, false);
  }

  addListener<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    return this.#add(event, fn, false);
  }

  once<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    return this.#add(event, fn, true);
  }

  /** Removes the most recently added registration of `fn` for `event`. */
  off<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    const list = this.#listeners.get(event);
    if (list === undefined) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn === fn) {
        list.splice(i, 1);
        break;
      }
    }
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  removeListener<K extends keyof E>(event: K, fn: (...args: E[K]) => void): this {
    return this.off(event, fn);
  }

  removeAllListeners(event?: keyof E): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Calls the listeners of `event` in order with `args`; true when there was one. */
  emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.#listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    for (const l of [...list]) {
      if (l.once) this.off(event, l.fn);
      l.fn(...args);
    }
    return true;
  }

  #add(event: keyof E, fn: Listener, once: boolean): this {
    let list = this.#listeners.get(event);
    if (list === undefined) this.#listeners.set(event, (list = []));
    list.push({ fn, once });
    return this;
  }
}

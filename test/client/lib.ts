/**
 * What the in-process ChatClient tests share (chat-client, reconnect, recover): identities made once per
 * nickname, a relay and clients closed at teardown, and waiting for one event.
 */
import type { ChatClient, ChatClientEvents } from '../../src/client/chat-client.js';
import { nodeClient, type NodeChatClientOptions } from '../../src/client/node-client.js';
import { freshKeys, type Keys } from '../../src/wirekit/identity.js';
import { startServer, type RelayServer, type ServerOptions } from '../../src/server/index.js';

export type Id = Keys;

export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A new identity key pair (the wire kit's). */
export const fresh = freshKeys;

const ids: Record<string, Id> = {};
/** The identity of `name`, made on first use and the same for the rest of the test file. */
export const id = (name: string): Id => (ids[name] ??= fresh());

/** A relay in process on 127.0.0.1 (port 0 unless given), closed at teardown. */
export async function relay(t: Teardown, opts: ServerOptions = {}): Promise<RelayServer> {
  const s = await startServer({ port: 0, ...opts });
  t.teardown(() => s.close());
  return s;
}

/** A client of the relay on `port` as `nick` (its identity id(nick) unless given), closed at teardown. */
export function client(t: Teardown, port: number, nick: string, extra: Partial<NodeChatClientOptions> = {}): ChatClient {
  const c = nodeClient({ host: '127.0.0.1', port, nick, identity: id(nick), ...extra });
  t.teardown(() => c.close());
  return c;
}

/** Resolves with the next event of that name whose payload passes `pred`. */
export function next<K extends keyof ChatClientEvents>(c: ChatClient, name: K, pred: (...a: ChatClientEvents[K]) => boolean = () => true): Promise<ChatClientEvents[K][0]> {
  return new Promise((resolve) => {
    const on = (...a: ChatClientEvents[K]) => {
      if (!pred(...a)) return;
      (c.off as (n: K, f: typeof on) => void)(name, on);
      resolve(a[0]);
    };
    (c.on as (n: K, f: typeof on) => void)(name, on);
  });
}

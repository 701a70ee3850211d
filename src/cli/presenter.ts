/**
 * What the CLI shows of a client's life (issue 11 point 2): one method per event of ChatClient, and two
 * renderers of it in src/cli/client.ts, the scripted one (the line contract of `--script`) and the
 * interactive one (the terminal). `present` binds a renderer to a client once, so the two cannot drift
 * apart in which events they hear: a new event of ChatClientEvents does not compile until both show it.
 * Events are shown in the order the client raised them; `established` waits for its safety number (the
 * backend computes it asynchronously), and what came after it waits with it (src/cli/in-order.ts).
 */
import type { ChatClient, ChatClientEvents } from '../client/chat-client.js';
import { inOrder } from './in-order.js';

type Payload<K extends keyof ChatClientEvents> = ChatClientEvents[K][0];
/** Every event a renderer shows (listener-error is the application's own, reported by the process). */
type Shown = Exclude<keyof ChatClientEvents, 'listener-error' | 'established'>;

export type Presenter = { readonly [K in Shown]: (e: Payload<K>) => void } & {
  readonly established: (e: { nick: string; verified: boolean; safetyNumber: string }) => void;
};

/** The shown events, as a record so that a missing one fails to compile. */
const SHOWN: Record<Shown, true> = {
  joined: true,
  'peer-joined': true,
  'peer-left': true,
  text: true,
  sent: true,
  delivered: true,
  rejected: true,
  'key-changed': true,
  'key-elsewhere': true,
  'peer-churn': true,
  'relay-error': true,
  'roster-mismatch': true,
  closed: true,
  'connection-lost': true,
  reconnecting: true,
  reconnected: true,
};

/** Shows every event of `client` through `view`, in the order the client raised them. */
export function present(client: ChatClient, view: Presenter): void {
  const ordered = inOrder();
  for (const k of Object.keys(SHOWN) as Shown[]) {
    client.on(k, (e: Payload<typeof k>) => ordered.run(() => (view[k] as (e: Payload<typeof k>) => void)(e)));
  }
  client.on('established', ({ nick, verified, safetyNumber }) => ordered.after(safetyNumber, (sn) => view.established({ nick, verified, safetyNumber: sn })));
}

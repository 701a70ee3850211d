/**
 * ChatClient with Node's platform parts (STYLE.md rule 12: the edge): the identity as a node:crypto
 * KeyObject, the node:crypto backend and TCP (optionally TLS, src/client/tcp.ts) unless given others.
 * The CLI, the benchmarks and the tests make their clients here; the page makes its own (src/web/app.ts).
 */
import type { KeyObject } from 'node:crypto';
import type { CryptoBackend } from '../crypto/backend.js';
import { nodeBackend, nodePrivateKey } from '../crypto/node.js';
import { ChatClient, type ChatClientOptions } from './chat-client.js';
import { tcpTransport } from './tcp.js';
import type { TransportFactory } from './transport.js';

export interface NodeChatClientOptions extends Omit<ChatClientOptions, 'identity' | 'crypto' | 'transport'> {
  /** The identity key pair; `spki` is the public key as DER SubjectPublicKeyInfo (294 bytes). */
  identity: { privateKey: KeyObject; spki: Uint8Array };
  /** Default node:crypto (src/crypto/node.ts). */
  crypto?: CryptoBackend;
  /** Default TCP to host:port. */
  transport?: TransportFactory;
}

/** The options of a ChatClient on Node: the key imported into the backend once, TCP by default. */
export function nodeClientOptions(o: NodeChatClientOptions): ChatClientOptions {
  const crypto = o.crypto ?? nodeBackend;
  const own = o.identity.privateKey;
  const privateKey = crypto === nodeBackend ? nodePrivateKey(own) : crypto.importPrivateKey(new Uint8Array(own.export({ format: 'der', type: 'pkcs8' })));
  return { ...o, identity: { privateKey, spki: o.identity.spki }, crypto, transport: o.transport ?? tcpTransport(o.host, o.port) };
}

/** A ChatClient on Node (see nodeClientOptions). */
export function nodeClient(o: NodeChatClientOptions): ChatClient {
  return new ChatClient(nodeClientOptions(o));
}

export { ChatClient, ClientFailure } from './chat-client.js';
export type { ChatClientEvents, ChatClientOptions, FailureKind, PeerInfo, PeerStatus, Undelivered, Welcome } from './chat-client.js';
export { PinStore, PinStoreError, PINS_DB, LEGACY_PINS_FILE, MAX_UNVERIFIED_PINS } from './pins.js';
export type { Pin, PinCheck } from './pins.js';
export { defaultHome, IdentityError, IDENTITY_FILE, openIdentity, prepareHome, readRoomSecret } from './home.js';
export type { Identity, PassphraseSource } from './home.js';
export { printable, splitText } from './text.js';

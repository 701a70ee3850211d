/**
 * The protocol version this code implements (spec/PROTOCOL.md §2.1). It travels in HELLO.version,
 * CHALLENGE.version and HS_INIT.version; a v2 implementation sends 2 and accepts only 2. The relay
 * connection and the end-to-end layer carry the same number today but are versioned independently.
 */
export const PROTOCOL_VERSION = 2;

/**
 * The identity of a relay, as the trust store knows it (issue 14 point 6): pins, and the history, are kept
 * per relay identity, never per spelling of its address.
 *
 * The identity is the address the user dialled, in one canonical spelling:
 * - host names are lowercased, a trailing dot dropped, international names in their ASCII (punycode) form;
 * - IP literals in their canonical form (`127.1` and `0x7f.0.0.1` are `127.0.0.1`; IPv6 compressed and in
 *   brackets; an IPv4-mapped IPv6 address is the IPv4 address);
 * - the loopback names (`localhost`, any `*.localhost`, RFC 6761 §6.3) and the loopback addresses
 *   `127.0.0.1` and `::1` are all `localhost`;
 * - then `:port`.
 * A public host name is not resolved: a relay reached under its name and under one of its addresses is two
 * relays to the pins (the fingerprint index across relays, PinStore.verifiedElsewhere, still warns about a
 * verified nickname showing another key). Resolving it would let whoever answers DNS start every pin afresh.
 *
 * relayIdentity is the one place that decides this, for both ends: protocol version 2 (spec §7.3) has the
 * relay announce its name in CHALLENGE.relay (by default relayIdentity of its listener, src/server/) and
 * the client refuse any name other than relayIdentity of what it dialled (or its --relay-name), then sign
 * that name into AUTH. So the name the pins are kept under is the name the relay proved it answers to.
 */

/** The identity pins and history are kept under, for the relay dialled as `host`, `port`. */
export function relayIdentity(host: string, port: number): string {
  const h = canonicalHost(host);
  return `${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/**
 * Reads a relay identity the user typed (`HOST:PORT`, `[V6]:PORT`, or an identity as `pins list` prints it)
 * into its canonical form; null when it is not one.
 */
export function parseRelayIdentity(s: string): string | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || String(port) !== m[3]) return null;
  return relayIdentity(m[1] ?? m[2]!, port);
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

function canonicalHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.') && h.length > 1) h = h.slice(0, -1);
  let canon = h;
  try {
    // The WHATWG URL host parser: canonical IPv4 (all its numeric forms) and IPv6, punycode for names.
    const parsed = new URL(`http://${h.includes(':') ? `[${h}]` : h}/`).hostname;
    canon = parsed.startsWith('[') ? parsed.slice(1, -1) : parsed;
  } catch {
    // Not a host the URL parser takes: kept as typed, lowercased (the connection will fail anyway).
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canon);
  if (mapped !== null) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    canon = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  if (LOOPBACK.has(canon) || canon.endsWith('.localhost')) return 'localhost';
  return canon;
}

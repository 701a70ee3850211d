/**
 * The key under which the relay counts connections "from one address" (spec/PROTOCOL.md §7.1 "Resource
 * limits"): an IPv4 address as is (also when it arrives IPv4-mapped, `::ffff:a.b.c.d`), and for IPv6 the
 * /64 prefix, because one IPv6 host normally holds a whole /64 and could otherwise open
 * MAX_CONNECTIONS_PER_ADDRESS connections from each of 2^64 addresses.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** `a.b.c.d` for IPv4 (and IPv4-mapped IPv6); `xxxx:xxxx:xxxx:xxxx::/64` for IPv6; the input otherwise. */
export function addressKey(addr: string): string {
  if (isIPv4(addr)) return addr;
  const zone = addr.indexOf('%');
  const bare = zone >= 0 ? addr.slice(0, zone) : addr;
  if (!isIPv6(bare)) return addr;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped !== null && isIPv4(mapped[1]!)) return mapped[1]!;
  const groups = expand(bare);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/**
 * The wider group an address belongs to, for the per-subnet cap (§7.1 "Quotas"): the IPv4 /24
 * (`a.b.c.0/24`, also for IPv4-mapped IPv6) or the IPv6 /48 (`xxxx:xxxx:xxxx::/48`); the input otherwise.
 */
export function subnetKey(addr: string): string {
  const k = addressKey(addr);
  if (isIPv4(k)) return `${k.slice(0, k.lastIndexOf('.'))}.0/24`;
  if (!k.endsWith('::/64')) return k;
  return `${k.split(':').slice(0, 3).join(':')}::/48`;
}

/** The eight 16-bit groups of a valid IPv6 address, lower-case hex without leading zeros. */
function expand(addr: string): string[] {
  let text = addr.toLowerCase();
  // A trailing embedded IPv4 (::ffff:1.2.3.4 was handled; this is e.g. 64:ff9b::1.2.3.4) is two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined ? [] : tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - h.length - t.length }, () => '0');
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16).toString(16));
}

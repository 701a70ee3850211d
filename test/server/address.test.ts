// Per-address connection counting (spec/PROTOCOL.md §7.1 "Resource limits"): IPv4 as is, IPv4-mapped IPv6
// as its IPv4, IPv6 by /64 prefix, whatever textual form the address arrives in.
import t from 'tap';
import { addressKey, subnetKey } from '../../src/server/address.js';

t.test('IPv4 and IPv4-mapped IPv6 count as the IPv4 address', async (t) => {
  t.equal(addressKey('127.0.0.1'), '127.0.0.1');
  t.equal(addressKey('::ffff:127.0.0.1'), '127.0.0.1');
  t.equal(addressKey('::FFFF:10.1.2.3'), '10.1.2.3');
  t.not(addressKey('127.0.0.1'), addressKey('127.0.0.2'));
});

t.test('IPv6 addresses in one /64 share a key; different /64s do not', async (t) => {
  const k = addressKey('2001:db8:1:2::1');
  t.equal(k, '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), k);
  t.equal(addressKey('2001:0DB8:0001:0002:0:0:0:7'), k, 'leading zeros and case do not matter');
  t.equal(addressKey('2001:db8:1:2::1%eth0'), k, 'a zone index does not matter');
  t.not(addressKey('2001:db8:1:3::1'), k);
  t.equal(addressKey('::1'), '0:0:0:0::/64');
  t.equal(addressKey('fe80::1:2:3:4'), 'fe80:0:0:0::/64');
  t.equal(addressKey('64:ff9b::192.0.2.33'), '64:ff9b:0:0::/64', 'embedded IPv4 in the low bits');
  t.equal(addressKey('1:2:3:4:5:6:7::'), '1:2:3:4::/64');
});

t.test('anything that is not an IP address is its own key', async (t) => {
  t.equal(addressKey('not-an-address'), 'not-an-address');
});

t.test('subnetKey: IPv4 /24 (also mapped), IPv6 /48, anything else as is', async (t) => {
  t.equal(subnetKey('127.0.0.2'), '127.0.0.0/24');
  t.equal(subnetKey('::ffff:10.1.2.3'), '10.1.2.0/24');
  t.equal(subnetKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1::/48');
  t.equal(subnetKey('2001:db8:1:ffff::1'), '2001:db8:1::/48');
  t.equal(subnetKey('::1'), '0:0:0::/48');
  t.equal(subnetKey('not an address'), 'not an address');
});

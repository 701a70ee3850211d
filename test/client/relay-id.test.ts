/**
 * The relay identity the pins are kept under (src/protocol/relay-id.ts, issue 14 point 6): one spelling per
 * relay, whatever the user typed.
 */
import t from 'tap';
import { parseRelayIdentity, relayIdentity } from '../../src/protocol/relay-id.js';

t.test('every spelling of the loopback relay is one identity', async (t) => {
  for (const h of ['localhost', 'LocalHost', 'localhost.', '127.0.0.1', '127.1', '0x7f.0.0.1', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'relay.localhost']) {
    t.equal(relayIdentity(h, 7000), 'localhost:7000', h);
  }
  t.not(relayIdentity('localhost', 7001), relayIdentity('localhost', 7000), 'another port is another relay');
});

t.test('names and addresses in one canonical form; public names are not resolved', async (t) => {
  t.equal(relayIdentity('Relay.Example.COM.', 443), 'relay.example.com:443');
  t.equal(relayIdentity('bücher.example', 443), 'xn--bcher-kva.example:443', 'an international name in its ASCII form');
  t.equal(relayIdentity('2001:DB8:0:0::0:1', 443), '[2001:db8::1]:443', 'IPv6 compressed, lowercase, in brackets');
  t.equal(relayIdentity('::ffff:10.1.2.3', 443), '10.1.2.3:443', 'an IPv4-mapped address is the IPv4 address');
  t.equal(relayIdentity('010.1.2.3', 443), '8.1.2.3:443', 'the URL parser reads a leading zero as octal, as getaddrinfo does');
  t.equal(relayIdentity('10.1.2.3', 443), '10.1.2.3:443');
  t.not(relayIdentity('relay.example.com', 443), relayIdentity('10.1.2.3', 443), 'a name and an address stay two relays');
});

t.test('a typed relay identity is read into its canonical form, anything else refused', async (t) => {
  t.equal(parseRelayIdentity('127.0.0.1:7000'), 'localhost:7000');
  t.equal(parseRelayIdentity('[::1]:7000'), 'localhost:7000');
  t.equal(parseRelayIdentity('localhost:7000'), 'localhost:7000');
  t.equal(parseRelayIdentity('[2001:db8::1]:443'), '[2001:db8::1]:443', 'what relayIdentity prints reads back to itself');
  t.equal(parseRelayIdentity('Relay.Example.com:443'), 'relay.example.com:443');
  for (const bad of ['', 'localhost', '::1:7000', 'x:0', 'x:07000', 'x:65536', 'x:7000:1', ':7000', 'x: 7000']) {
    t.equal(parseRelayIdentity(bad), null, JSON.stringify(bad));
  }
});

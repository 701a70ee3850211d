/** The sender's clock against ours (src/cli/client.ts skewNote, issue 14 point 7): flagged beyond 2 minutes. */
import t from 'tap';
import { MAX_CLOCK_SKEW_MS, skewNote } from '../../src/cli/client.js';

t.test('a TEXT.ts within 2 minutes is not flagged; a delayed or early one is, saying which', async (t) => {
  const now = 1_800_000_000_000;
  t.equal(skewNote(now, now), null);
  t.equal(skewNote(now - MAX_CLOCK_SKEW_MS, now), null, 'at the bound');
  t.match(skewNote(now - MAX_CLOCK_SKEW_MS - 1, now), /before it arrived/, 'held back by the relay (or a slow clock)');
  t.match(skewNote(now - 5 * 60_000, now), /5 min/);
  t.match(skewNote(now + 3 * 3600_000, now), /ahead/, "the sender's clock ahead");
  t.match(skewNote(now + 3 * 3600_000, now), /3 h/);
  t.match(skewNote(0, now), /before it arrived/, 'a zero timestamp');
});

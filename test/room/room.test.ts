// Room manager (spec/PROTOCOL.md §7.1 "Joining", "Leaving"): pure membership, no sockets.
import t from 'tap';
import fc from 'fast-check';
import { RoomManager, type RoomMember } from '../../src/room/index.js';
import { isProtocolError } from '../../src/protocol/errors.js';
import { LIMITS } from '../../src/protocol/limits.js';

const m = (nick: string, handle = nick): RoomMember<string> => ({ nick, key: Buffer.from(`key-of-${nick}`), handle });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isProtocolError(e) ? e.errorName : `not a ProtocolError: ${String(e)}`;
  }
  return 'no error';
}

t.test('a room is created on first join and the joiner sees no one', async (t) => {
  const rooms = new RoomManager<string>();
  t.same(rooms.join('r', m('alice')), []);
  t.equal(rooms.roomCount, 1);
  t.same(rooms.members('r').map((x) => x.nick), ['alice']);
});

t.test('the second joiner receives the first member with its key', async (t) => {
  const rooms = new RoomManager<string>();
  rooms.join('r', m('alice'));
  const others = rooms.join('r', m('bob'));
  t.same(others.map((x) => [x.nick, Buffer.from(x.key).toString()]), [['alice', 'key-of-alice']]);
});

t.test('a join beyond the room size is ROOM_FULL and leaves the room unchanged', async (t) => {
  const rooms = new RoomManager<string>(2);
  rooms.join('r', m('a'));
  rooms.join('r', m('b'));
  t.equal(codeOf(() => rooms.join('r', m('c'))), 'ROOM_FULL');
  t.same(rooms.members('r').map((x) => x.nick), ['a', 'b']);
});

t.test('a nickname already in the room is NICK_IN_ROOM, even when the room is full', async (t) => {
  const rooms = new RoomManager<string>(2);
  rooms.join('r', m('a'));
  t.equal(codeOf(() => rooms.join('r', m('a', 'other-conn'))), 'NICK_IN_ROOM');
  rooms.join('r', m('b'));
  t.equal(codeOf(() => rooms.join('r', m('a', 'other-conn'))), 'NICK_IN_ROOM');
  t.equal(rooms.member('r', 'a')?.handle, 'a', 'the original member is kept');
});

t.test('the same nickname may be in two different rooms', async (t) => {
  const rooms = new RoomManager<string>();
  rooms.join('r1', m('a'));
  t.same(rooms.join('r2', m('a')), []);
  t.equal(rooms.roomCount, 2);
});

t.test('leave returns the remaining members and removes an empty room', async (t) => {
  const rooms = new RoomManager<string>(3);
  rooms.join('r', m('a'));
  rooms.join('r', m('b'));
  rooms.join('r', m('c'));
  t.same(rooms.leave('r', 'b').map((x) => x.nick), ['a', 'c']);
  t.same(rooms.leave('r', 'a').map((x) => x.nick), ['c']);
  t.same(rooms.leave('r', 'c'), []);
  t.equal(rooms.roomCount, 0);
  t.same(rooms.members('r'), []);
});

t.test('leaving a room one is not in changes nothing', async (t) => {
  const rooms = new RoomManager<string>();
  rooms.join('r', m('a'));
  t.same(rooms.leave('r', 'zed'), []);
  t.same(rooms.leave('nowhere', 'a'), []);
  t.same(rooms.members('r').map((x) => x.nick), ['a']);
});

t.test('a place freed by a leave can be taken again (leave and rejoin)', async (t) => {
  const rooms = new RoomManager<string>(2);
  rooms.join('r', m('a'));
  rooms.join('r', m('b'));
  rooms.leave('r', 'b');
  t.same(rooms.join('r', m('c')).map((x) => x.nick), ['a']);
  rooms.leave('r', 'c');
  t.same(rooms.join('r', m('b')).map((x) => x.nick), ['a'], 'b rejoins');
});

t.test('rooms larger than two work for the configured size', async (t) => {
  const size = 5;
  const rooms = new RoomManager<string>(size);
  for (let i = 0; i < size; i++) t.equal(rooms.join('big', m(`n${i}`)).length, i);
  t.equal(codeOf(() => rooms.join('big', m('late'))), 'ROOM_FULL');
});

t.test('three simultaneous joins to a two-member room admit exactly two', async (t) => {
  const rooms = new RoomManager<string>(2);
  // Each join is started from its own task, as the server starts them from separate socket reads.
  const attempts = ['a', 'b', 'c'].map((nick) =>
    Promise.resolve().then(() => {
      try {
        rooms.join('race', m(nick));
        return 'joined';
      } catch (e) {
        return isProtocolError(e) ? e.errorName : 'other';
      }
    }),
  );
  const results = await Promise.all(attempts);
  t.same([...results].sort(), ['ROOM_FULL', 'joined', 'joined']);
  t.equal(rooms.members('race').length, 2);
});

t.test('room size outside 2..MAX_ROOM_SIZE is refused at construction', async (t) => {
  t.throws(() => new RoomManager(1), RangeError);
  t.throws(() => new RoomManager(LIMITS.MAX_ROOM_SIZE + 1), RangeError);
  t.doesNotThrow(() => new RoomManager(LIMITS.MAX_ROOM_SIZE));
});

t.test('invariants hold over any sequence of joins and leaves', async (t) => {
  const op = fc.record({
    kind: fc.constantFrom('join', 'leave'),
    room: fc.constantFrom('r1', 'r2', 'r3'),
    nick: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
  });
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 4 }), fc.array(op, { maxLength: 60 }), (size, ops) => {
      const rooms = new RoomManager<string>(size);
      // A model: room -> ordered nick list.
      const model = new Map<string, string[]>();
      for (const o of ops) {
        const cur = model.get(o.room) ?? [];
        if (o.kind === 'join') {
          const expected = cur.includes(o.nick) ? 'NICK_IN_ROOM' : cur.length >= size ? 'ROOM_FULL' : 'ok';
          let got = 'ok';
          let others: string[] = [];
          try {
            others = rooms.join(o.room, m(o.nick)).map((x) => x.nick);
          } catch (e) {
            got = isProtocolError(e) ? e.errorName : 'other';
          }
          if (got !== expected) return false;
          if (got === 'ok') {
            if (others.join() !== cur.join()) return false;
            model.set(o.room, [...cur, o.nick]);
          }
        } else {
          const rest = rooms.leave(o.room, o.nick).map((x) => x.nick);
          const next = cur.filter((n) => n !== o.nick);
          if (cur.includes(o.nick) && rest.join() !== next.join()) return false;
          if (next.length === 0) model.delete(o.room);
          else model.set(o.room, next);
        }
        if (rooms.roomCount !== model.size) return false;
        for (const [room, nicks] of model) {
          if (rooms.members(room).map((x) => x.nick).join() !== nicks.join()) return false;
          if (nicks.length > size) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('300 random sequences matched the model');
});

// The argument parser every subcommand shares (src/cli/args.ts): strict options, positionals kept in
// order, --help on stdout with status 0, a usage error once on stderr with status 2.
import t from 'tap';
import { failer, parseCommand, type Output } from '../../src/cli/args.js';

function sink(): Output & { o: string; e: string } {
  const s = { o: '', e: '', out: (x: string) => void (s.o += x), err: (x: string) => void (s.e += x) };
  return s;
}

const OPTS = { home: { type: 'string' }, force: { type: 'boolean' } } as const;

t.test('options and positionals', async (t) => {
  const io = sink();
  const p = parseCommand('key', ['import', 'f.key', '--home', '/h', '--force'], OPTS, 'usage: u', io);
  t.same(p, { values: { home: '/h', force: true }, positionals: ['import', 'f.key'] });
  t.same([io.o, io.e], ['', '']);
});

t.test('--help and -h print the usage on stdout: status 0', async (t) => {
  for (const flag of ['--help', '-h']) {
    const io = sink();
    t.equal(parseCommand('pins', ['list', flag], OPTS, 'usage: u', io), 0);
    t.same([io.o, io.e], ['usage: u\n', '']);
  }
});

t.test('unknown, mistyped or missing option values are usage errors: status 2, the error then the usage, once', async (t) => {
  for (const argv of [['--frob'], ['--home'], ['--force=yes'], ['--help=1']]) {
    const io = sink();
    t.equal(parseCommand('history', argv, OPTS, 'usage: u', io), 2, argv.join(' '));
    t.equal(io.o, '');
    t.match(io.e, /^e2ee-chat history: .+\nusage: u\n$/);
    t.equal(io.e.split('usage: u').length, 2, 'the usage once');
  }
});

t.test('failer: the command name, the message, the status', async (t) => {
  const io = sink();
  const fail = failer('pins', io);
  t.equal(fail('no pin for bob', 1), 1);
  t.equal(fail('bad'), 2, 'usage by default');
  t.equal(io.e, 'e2ee-chat pins: no pin for bob\ne2ee-chat pins: bad\n');
});

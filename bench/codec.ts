/**
 * Codec benchmark (issue 2 "Speed"): frames per second of strict `decodeFrame` on a typical relay frame
 * (SEND with a 256-byte opaque body) against a bare `@msgpack/msgpack` decode of the same bytes, measured
 * in the same run so the ratio is stable on a shared machine (STYLE.md rule 11). Target: ratio >= 0.7.
 * A benchmark, not a test: it asserts nothing and is run by `npm run bench`.
 */
import { decode } from '@msgpack/msgpack';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { decodeFrame, encodeFrame, frame } from '../src/codec/index.js';

export interface CodecBenchResult {
  name: string;
  figure: number;
  floor: number;
  ratio: number;
  /** Every round's rates, strict and bare (paired by index). */
  figures: number[];
  floors: number[];
  target: string;
  unit: string;
}

/** Deterministic 256-byte body (no randomness: the same bytes every run). */
function body256(): Uint8Array {
  const b = new Uint8Array(256);
  for (let i = 0; i < b.length; i++) b[i] = (i * 151 + 7) & 0xff;
  return b;
}

/** Runs `fn` over `iterations` calls and returns calls per second. */
function rate(fn: () => unknown, iterations: number): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) if (fn() !== undefined) sink++;
  const ms = performance.now() - t0;
  if (sink !== iterations) throw new Error('benchmark body returned undefined');
  return (iterations / ms) * 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Measures strict and bare decoding of the same SEND frame body (273 bytes) in interleaved rounds and
 * reports the medians in frames per second; `quick` uses fewer, shorter rounds.
 */
export async function benchCodec(opts: { quick: boolean }): Promise<CodecBenchResult> {
  const bytes = encodeFrame(frame('SEND', { to: 'bob', body: body256() }));
  const iterations = opts.quick ? 20_000 : 200_000;
  const rounds = opts.quick ? 5 : 9;
  const strict = (): unknown => decodeFrame(bytes, 'relay');
  const bare = (): unknown => decode(bytes);
  // Warm-up so both paths are optimised before anything is timed.
  rate(strict, iterations);
  rate(bare, iterations);
  const strictRates: number[] = [];
  const bareRates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Interleaved rounds: a noisy neighbour slows both sides of the same round alike.
    strictRates.push(rate(strict, iterations));
    bareRates.push(rate(bare, iterations));
  }
  const figure = median(strictRates);
  const floor = median(bareRates);
  return {
    name: 'codec: strict decode of SEND (256-byte body) vs bare msgpack decode',
    figure,
    floor,
    ratio: figure / floor,
    figures: strictRates,
    floors: bareRates,
    target: 'ratio >= 0.7',
    unit: 'frames/s',
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchCodec({ quick: process.argv.includes('--quick') });
  process.stdout.write(
    `${r.name}\n  strict ${Math.round(r.figure).toLocaleString('en-US')} ${r.unit}, bare ${Math.round(r.floor).toLocaleString('en-US')} ${r.unit}, ratio ${r.ratio.toFixed(3)} (${r.target})\n`,
  );
}

/**
 * The top entries of a V8 .cpuprofile (as written by `node --cpu-prof`, which `npm run bench -- --profile
 * DIR` turns on for the relays and the load generators): self time per function, summed over every node
 * of the call tree with the same function, file and line, as a percentage of all samples.
 *
 * Usage: node dist/bench/profile-top.js FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** `[label, percent of samples]`, largest first, at most `n`. */
export function topSelf(profile: { nodes: ProfileNode[] }, n: number): [string, number][] {
  const by = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    total += hits;
    const f = node.callFrame;
    const where = f.url === '' ? '' : ` ${basename(f.url)}:${f.lineNumber + 1}`;
    const label = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`;
    by.set(label, (by.get(label) ?? 0) + hits);
  }
  return [...by.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => [k, total === 0 ? 0 : (100 * v) / total]);
}

if (process.argv[1] !== undefined && basename(process.argv[1]) === 'profile-top.js') {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profile-top.js FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[] };
  for (const [label, pct] of topSelf(prof, Number(process.argv[3] ?? 15))) process.stdout.write(`${pct.toFixed(1).padStart(5)} %  ${label}\n`);
}

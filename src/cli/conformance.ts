/** `e2ee-chat conformance`: placeholder until the module lands (see the open issue for this command). */
export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('e2ee-chat conformance: not built yet\n');
  return 70;
}

/** `e2ee-chat server`: placeholder until the module lands (see the open issue for this command). */
export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('e2ee-chat server: not built yet\n');
  return 70;
}

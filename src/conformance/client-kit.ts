// Work in progress: replaced by the client kit in the next commit.
import type { CaseResult } from './runner.js';
export const CLIENT_CASES: ReadonlyArray<{ id: string; section: string; title: string }> = [];
export async function runClientKit(_o: { cmd: string; only?: string | undefined; waitMs?: number }): Promise<CaseResult[]> {
  throw new Error('the client kit is not built yet');
}

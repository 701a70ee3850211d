/**
 * A reader of our output that went away (`e2ee-chat history export | head -3`, `npm run demo | head`):
 * the command stops quietly with the status a shell gives a process ended by SIGPIPE, not with an
 * EPIPE error or a stack trace. Node ignores SIGPIPE, so the closed pipe shows up as an EPIPE error:
 * thrown by a synchronous write (writeSync), or emitted by process.stdout for a stream write.
 */

/** 128 + 13 (SIGPIPE). The output did not all get written, so it is not 0. */
export const CLOSED_PIPE = 141;

/** Whether `e` is the error of a write to a pipe whose reader is gone. */
export function isClosedPipe(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === 'EPIPE';
}

/**
 * On an error of process.stdout: `cleanup`, then exit CLOSED_PIPE for a closed pipe, 1 for any other
 * error. For commands that have nothing to finish once nobody reads them (not the client, which leaves
 * its room first, nor the relay, whose log drops lines on a closed descriptor and goes on).
 */
export function exitOnClosedStdout(cleanup: () => void = () => {}): void {
  process.stdout.on('error', (err) => {
    cleanup();
    process.exit(isClosedPipe(err) ? CLOSED_PIPE : 1);
  });
}

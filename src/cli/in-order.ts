/**
 * Output in event order when one event's line waits for a value (the safety number of `established`
 * is computed asynchronously by the crypto backend, 2 x 5200 SHA-512): lines raised after it wait for it,
 * and while nothing waits a line is written at once.
 */
export interface InOrder {
  /** Runs `show` now, or after the lines that wait before it. */
  run(show: () => void): void;
  /** Runs `show` with the value of `value` once it is known, and every later `run` after it. */
  after<T>(value: Promise<T>, show: (v: T) => void): void;
}

export function inOrder(): InOrder {
  let tail: Promise<void> | null = null;
  let waiting = 0;
  const queue = (step: Promise<void>) => {
    waiting++;
    tail = step.finally(() => {
      if (--waiting === 0) tail = null;
    });
  };
  return {
    run(show) {
      if (tail === null) return show();
      queue(tail.then(show));
    },
    after(value, show) {
      queue(Promise.all([tail, value]).then(([, v]) => show(v)));
    },
  };
}

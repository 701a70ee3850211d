/**
 * Token buckets for the relay's quotas (spec/PROTOCOL.md §7.1 "Quotas", §10): a bucket of `burst`
 * tokens refilled at `burst` per `intervalMs`, and a map of buckets by key (a key, an address, a subnet)
 * whose entries are forgotten once full again, so the map holds only keys that spent recently: its size is
 * bounded by the rate at which tokens can be spent, not by how many keys exist.
 */
export class Bucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly burst: number,
    private readonly intervalMs: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.burst) / this.intervalMs);
    this.at = now;
  }

  /** Whether `n` tokens are there now (without taking them). */
  has(now: number, n = 1): boolean {
    this.refill(now);
    return this.tokens >= n;
  }

  /** Takes `n` tokens if there are that many; false (and nothing taken) otherwise. */
  take(now: number, n = 1): boolean {
    if (!this.has(now, n)) return false;
    this.tokens -= n;
    return true;
  }

  /** Gives back `n` tokens (a reservation that was not used), up to the burst. */
  give(n = 1): void {
    this.tokens = Math.min(this.burst, this.tokens + n);
  }

  /** True when the bucket is full: it then carries no information and can be dropped. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

export class Buckets {
  private readonly map = new Map<string, Bucket>();

  constructor(
    private readonly burst: number,
    private readonly intervalMs: number,
  ) {}

  get(key: string, now: number): Bucket {
    let b = this.map.get(key);
    if (b === undefined) {
      b = new Bucket(this.burst, this.intervalMs, now);
      this.map.set(key, b);
    }
    return b;
  }

  /** Drops the buckets that are full again. */
  prune(now: number): void {
    for (const [k, b] of this.map) if (b.full(now)) this.map.delete(k);
  }

  get size(): number {
    return this.map.size;
  }
}

/** A multiset of keys (connections per key, per nickname, per subnet). */
export class Counter {
  private readonly map = new Map<string, number>();

  get(key: string): number {
    return this.map.get(key) ?? 0;
  }

  add(key: string): void {
    this.map.set(key, this.get(key) + 1);
  }

  remove(key: string): void {
    const n = this.get(key) - 1;
    if (n <= 0) this.map.delete(key);
    else this.map.set(key, n);
  }
}

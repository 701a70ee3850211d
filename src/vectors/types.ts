/**
 * The vectors framework (spec/VECTORS.md): every vector file under `vectors/` is made by one suite.
 * A suite generates its document deterministically and verifies a document with the runtime code, so the
 * same object serves the generator (`npm run vectors`), the drift check (`npm run vectors:check`) and the
 * runner (`e2ee-chat vectors verify`).
 */
import type { CryptoBackend } from '../crypto/backend.js';

/** One case of a vector file: `id` is `<area>_<defect>`, `section` the spec section it exercises. */
export interface VectorCase {
  id: string;
  description: string;
  section: string;
  [field: string]: unknown;
}

/** The whole content of one vector file. */
export interface VectorDocument {
  title: string;
  spec: string;
  description: string;
  cases: VectorCase[];
}

/** A case that did not verify, with a human-readable reason. */
export interface VectorFailure {
  id: string;
  reason: string;
}

export interface VectorSuite {
  /** File name under vectors/, e.g. "codec.json". */
  readonly file: string;
  /** Deterministic: byte-identical every run (no randomness, no clock). */
  generate(): VectorDocument | Promise<VectorDocument>;
  /**
   * Checks every case of `doc` (as parsed from JSON) with the runtime code, its cryptography done by
   * `crypto` (default node:crypto); an empty list is a pass.
   */
  verify(doc: unknown, crypto?: CryptoBackend): VectorFailure[] | Promise<VectorFailure[]>;
}

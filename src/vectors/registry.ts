/**
 * Every vector suite, in the order their files are written and verified (spec/VECTORS.md). The crypto
 * suites are appended here.
 */
import { codecSuite } from './codec.js';
import { primitivesSuite } from './crypto-primitives.js';
import { handshakeSuite } from './crypto-transcripts.js';
import { passiveSuite } from './crypto-passive.js';
import { rosterSuite } from './crypto-roster.js';
import type { VectorSuite } from './types.js';

export const SUITES: VectorSuite[] = [codecSuite, primitivesSuite, handshakeSuite, passiveSuite, rosterSuite];

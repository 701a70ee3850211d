// The suites' harness uses Buffer (hex and byte helpers); the page gets the npm `buffer` package's.
import { Buffer } from 'buffer';
globalThis.Buffer = Buffer;
export { Buffer };

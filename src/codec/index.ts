export * from '../protocol/frames.js';
export { decodeFrame, encodeFrame, encodeWire, frame } from './frame.js';
export { checkStrict, decodeStrict, StrictMap, type StrictValue } from './strict.js';
export { FrameReader } from './reader.js';

export * from './catalogue.js';
export { decodeFrame, encodeFrame, encodeWire, frame } from './frame.js';
export { checkStrict } from './strict.js';
export { FrameReader } from './reader.js';

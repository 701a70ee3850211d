/**
 * The page's transport (src/client/transport.ts) over the relay's WebSocket endpoint (spec §3.1): one
 * binary message is one frame body, without the §3 length prefix. A text message breaks the framing
 * (MALFORMED_FRAME); the relay connection checks the size of every body (FRAME_TOO_LARGE). A browser's
 * WebSocket buffers what is sent, so `write` never asks to wait and `drain` is never needed.
 */
import { encodeFrame } from '../codec/index.js';
import type { TransportFactory } from '../client/transport.js';
import { ProtocolError } from '../protocol/errors.js';

export function webSocketTransport(url: string, subprotocol: string): TransportFactory {
  return (h) => {
    const ws = new WebSocket(url, subprotocol);
    ws.binaryType = 'arraybuffer';
    let closed = false;
    ws.onopen = () => h.open();
    ws.onmessage = (ev: MessageEvent) => {
      if (closed) return;
      const data: unknown = ev.data;
      if (data instanceof ArrayBuffer) h.data(new Uint8Array(data));
      else h.invalid(new ProtocolError('MALFORMED_FRAME', 'a text message on the WebSocket (§3.1)'));
    };
    ws.onclose = (ev: CloseEvent) => {
      if (closed) return;
      closed = true;
      h.close(ev.wasClean ? undefined : `connection lost (WebSocket close ${ev.code})`);
    };
    return {
      encode: encodeFrame,
      write: (bytes) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(bytes);
        return true;
      },
      cork: () => {},
      uncork: () => {},
      end: () => ws.close(1000),
    };
  };
}

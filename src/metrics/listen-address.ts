import { CofferError } from '../common/index.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * `host:port`, `[v6]:port` or `:port` (127.0.0.1: the metrics say how busy and how big the
 * deployment is, which is for whoever runs it, so loopback unless the operator names a host).
 */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !Number.isInteger(port) || port > 65535) {
    throw new CofferError('BadRequest', `"${text}" is not an address to listen on: give host:port, e.g. 127.0.0.1:9180 ([::1]:9180 for IPv6; port 0 picks a free one).`);
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

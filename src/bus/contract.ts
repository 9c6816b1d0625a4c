import type { z } from 'zod';

// RPC contracts are data: each method names its input and output schema, whether it is a call
// or a cast, and its timeout. Clients and servers are derived from them (rpc-client.ts,
// rpc-server.ts), so both ends validate what crosses the wire.

export interface CallMethod<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  kind: 'call';
  input: I;
  output: O;
  timeoutMs: number;
}

export interface CastMethod<I extends z.ZodType = z.ZodType> {
  kind: 'cast';
  input: I;
  /**
   * The contract version whose receivers understand this method as it is now (see
   * servesVersion); its messages are stamped with it rather than the contract's version, so a
   * receiver that predates a later method keeps taking this one. Raise it whenever the method's
   * input changes. Absent: the contract's version.
   */
  since?: string;
}

export type MethodContract = CallMethod | CastMethod;

export interface ServiceContract<M extends Record<string, MethodContract> = Record<string, MethodContract>> {
  name: string;
  version: string;
  methods: M;
}

export function call<I extends z.ZodType, O extends z.ZodType>(
  input: I,
  output: O,
  timeoutMs: number,
): CallMethod<I, O> {
  return { kind: 'call', input, output, timeoutMs };
}

export function cast<I extends z.ZodType>(input: I, options: { since?: string } = {}): CastMethod<I> {
  return { kind: 'cast', input, ...(options.since === undefined ? {} : { since: options.since }) };
}

/** the version a message of `method` is stamped with */
export function messageVersion(contract: ServiceContract, method: MethodContract): string {
  return method.kind === 'cast' ? (method.since ?? contract.version) : contract.version;
}

export function defineService<M extends Record<string, MethodContract>>(
  name: string,
  version: string,
  methods: M,
): ServiceContract<M> {
  return { name, version, methods };
}

// Versions are `<major>.<minor>`. A minor version only adds (a method, an optional field), so a
// receiver serving 1.3 understands what a 1.0 sender says; a new major version changes meaning.
// A message newer than its receiver is refused: its new fields would otherwise be lost on it.
const versionPattern = /^(\d+)\.(\d+)$/;

/** Whether a receiver serving `served` understands a message speaking `spoken`. */
export function servesVersion(served: string, spoken: string): boolean {
  const s = versionPattern.exec(served);
  const m = versionPattern.exec(spoken);
  if (s === null || m === null) return false;
  return s[1] === m[1] && Number(m[2]) <= Number(s[2]);
}

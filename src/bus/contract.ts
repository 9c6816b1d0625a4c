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

export function cast<I extends z.ZodType>(input: I): CastMethod<I> {
  return { kind: 'cast', input };
}

export function defineService<M extends Record<string, MethodContract>>(
  name: string,
  version: string,
  methods: M,
): ServiceContract<M> {
  return { name, version, methods };
}

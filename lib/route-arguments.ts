/* A route handler's arguments as its param decorators extract them from the request, before pipes. */
import type { ExecutionContext } from '@nestjs/common';
import { NEST_METADATA } from './redis-lock.constants.js';

/** One entry of Nest's route args metadata (`@Param('id')`, a custom param decorator...). */
interface RouteArg {
  index: number;
  data?: unknown;
  pipes?: unknown[];
  factory?: (data: unknown, context: ExecutionContext) => unknown;
}

/** Nest's `RouteParamtypes` values read here (the same since Nest 7). */
const PARAM_TYPE = {
  request: 0,
  response: 1,
  next: 2,
  body: 3,
  query: 4,
  param: 5,
  headers: 6,
  host: 10,
  ip: 11,
} as const;

/** What the request objects of Express and Fastify share for these values. */
interface RawRequest {
  body?: Record<string, unknown>;
  query?: Record<string, unknown>;
  params?: Record<string, unknown>;
  headers?: Record<string, unknown>;
  hosts?: Record<string, unknown>;
  ip?: unknown;
}

/**
 * The arguments of the handler `propertyKey` of `context`'s class as its param decorators extract
 * them from the request, without pipes; an argument of a kind not read here (files, cookies,
 * session) is `undefined`. `pipeable` tells whether a pipe may change them before the handler
 * gets them: a pipe bound to one of them, to the method or to the class (global pipes are not
 * visible here).
 *
 * @throws whatever a custom param decorator's factory throws.
 * @example
 * const { args } = rawRouteArguments(context, 'events'); // [ '7' ] for @Param('id') id on /7
 */
export function rawRouteArguments(
  context: ExecutionContext,
  propertyKey: string | symbol,
): { args: unknown[]; pipeable: boolean } {
  const metadata = (Reflect.getMetadata(NEST_METADATA.routeArgs, context.getClass(), propertyKey) ??
    {}) as Record<string, RouteArg>;
  const http = context.switchToHttp();
  const request = http.getRequest<RawRequest>();
  const args: unknown[] = [];
  let pipeable =
    hasItems(Reflect.getMetadata(NEST_METADATA.pipes, context.getClass())) ||
    hasItems(Reflect.getMetadata(NEST_METADATA.pipes, context.getHandler()));
  for (const [key, arg] of Object.entries(metadata)) {
    pipeable ||= hasItems(arg.pipes);
    if (key.includes(NEST_METADATA.customRouteArgs)) {
      // Called as Nest calls it: with the decorator's data and this request's context.
      args[arg.index] = arg.factory?.(arg.data, context);
      continue;
    }
    const data = typeof arg.data === 'string' ? arg.data : undefined;
    args[arg.index] = extract(Number(key.split(':')[0]), data, request, http);
  }
  return { args, pipeable };
}

function extract(
  type: number,
  data: string | undefined,
  request: RawRequest,
  http: ReturnType<ExecutionContext['switchToHttp']>,
): unknown {
  const pick = (source: Record<string, unknown> | undefined) =>
    data === undefined ? source : ownValue(source, data);
  switch (type) {
    case PARAM_TYPE.request:
      return request;
    case PARAM_TYPE.response:
      return http.getResponse();
    case PARAM_TYPE.next:
      return http.getNext();
    case PARAM_TYPE.body:
      return pick(request.body);
    case PARAM_TYPE.query:
      return pick(request.query);
    case PARAM_TYPE.param:
      return pick(request.params);
    case PARAM_TYPE.headers:
      return data === undefined ? request.headers : ownValue(request.headers, data.toLowerCase());
    case PARAM_TYPE.host:
      return pick(request.hosts);
    case PARAM_TYPE.ip:
      return request.ip;
    default:
      return undefined;
  }
}

/** Own properties only: a name like `constructor` must not pick a prototype member. */
function ownValue(source: Record<string, unknown> | undefined, name: string): unknown {
  return source !== null && typeof source === 'object' && Object.hasOwn(source, name)
    ? source[name]
    : undefined;
}

function hasItems(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0;
}

/* Key templates (`'order:{id}'`): compiled once per method, filled from a call's arguments. */
import { InvalidLockKeyError, LockTemplateError } from '../../errors/lock.errors.js';
import { MAX_KEY_LENGTH, MAX_KEY_PART_LENGTH } from '../../redis-lock.constants.js';
import {
  badKeyFunctionResultMessage,
  badPlaceholderValueMessage,
  keyFunctionThrewMessage,
  templateSyntaxMessage,
  unknownPlaceholderMessage,
} from '../../redis-lock.messages.js';
import type { ParameterList } from './parameter-names.js';

/**
 * A lock key as `@Lock` accepts it: a template, or a function given the method's arguments.
 *
 * @example
 * const byTemplate: LockKey = 'order:{{id}}';
 * const byFunction: LockKey = (id: string, dto: { currency: string }) => `order:${id}:${dto.currency}`;
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LockKey = string | ((...params: any[]) => string);

/** Builds the key (or keys, for a multi-key lock) of one call from the method's arguments. */
export type KeyResolver = (args: unknown[]) => string | string[];

type Part = string | { placeholder: string; argIndex: number; path: string[] };

const PATH = /^(?:[A-Za-z_$][\w$]*|\d+)(?:\.(?:[A-Za-z_$][\w$]*|\d+))*$/;

/**
 * Compiles a key template against a method's parameters, failing at once on a malformed template
 * or a placeholder that names no parameter. `{{path}}` starts with a parameter name or an argument
 * index and may walk properties (`{{dto.customer.id}}`, `{{0.id}}`); single braces are literal, so
 * Redis Cluster hash tags (`'{orders}:{{id}}'`) pass through. An array compiles each template
 * for a multi-key lock.
 *
 * @param where `Class.method()`, for messages
 * @throws LockTemplateError on a malformed template or unknown parameter.
 * @example
 * const resolve = compileKeyTemplate('order:{{id}}', { names: ['id'], hasRest: false }, 'Orders.pay()');
 * resolve(['42']); // 'order:42'
 * const both = compileKeyTemplate(['account:{{from}}', 'account:{{to}}'], { names: ['from', 'to'], hasRest: false }, 'Bank.transfer()');
 * both(['a', 'b']); // ['account:a', 'account:b']
 */
export function compileKeyTemplate(
  key: LockKey | readonly LockKey[],
  params: ParameterList,
  where: string,
): KeyResolver {
  if (Array.isArray(key)) {
    if (key.length === 0) {
      throw new LockTemplateError(templateSyntaxMessage(where, '[]', 'the list of keys is empty.'));
    }
    const resolvers = key.map((one: LockKey) => compileOne(one, params, where));
    return (args) => resolvers.map((resolve) => resolve(args));
  }
  return compileOne(key as LockKey, params, where);
}

function compileOne(
  key: LockKey,
  params: ParameterList,
  where: string,
): (args: unknown[]) => string {
  if (typeof key === 'function') return (args) => callKeyFunction(key, args, where);
  if (typeof key !== 'string' || key.length === 0) {
    throw new LockTemplateError(templateSyntaxMessage(where, String(key), 'the key is empty.'));
  }
  const parts = parseTemplate(key, params, where);
  return (args) => {
    let result = '';
    for (const part of parts) {
      result += typeof part === 'string' ? part : placeholderValue(part, args, where);
    }
    return result;
  };
}

function parseTemplate(template: string, params: ParameterList, where: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < template.length) {
    // `{{` opens a placeholder unless a third brace follows: `{{{id}}}` is a literal `{` + `{{id}}`.
    if (template.startsWith('{{', i) && template[i + 2] !== '{') {
      const close = template.indexOf('}}', i + 2);
      if (close < 0) {
        throw new LockTemplateError(
          templateSyntaxMessage(
            where,
            template,
            `placeholder at position ${i} is not closed with }}.`,
          ),
        );
      }
      const placeholder = template.slice(i + 2, close).trim();
      if (literal) parts.push(literal);
      literal = '';
      parts.push(compilePlaceholder(placeholder, template, params, where));
      i = close + 2;
    } else {
      literal += template[i++];
    }
  }
  if (literal) parts.push(literal);
  return parts;
}

function compilePlaceholder(
  placeholder: string,
  template: string,
  params: ParameterList,
  where: string,
): Part {
  if (!PATH.test(placeholder)) {
    throw new LockTemplateError(
      templateSyntaxMessage(
        where,
        template,
        `placeholder {{${placeholder}}} is not a parameter name or index followed by .properties.`,
      ),
    );
  }
  const [head, ...path] = placeholder.split('.');
  const available = params.names.filter((name): name is string => name !== null);
  if (/^\d+$/.test(head)) {
    const argIndex = Number(head);
    if (argIndex >= params.names.length && !params.hasRest) {
      throw new LockTemplateError(
        templateSyntaxMessage(
          where,
          template,
          `placeholder {{${placeholder}}} points at argument ${argIndex}, but the method declares ` +
            `${params.names.length} parameter(s).`,
        ),
      );
    }
    return { placeholder, argIndex, path };
  }
  const argIndex = params.names.indexOf(head);
  if (argIndex < 0) {
    throw new LockTemplateError(unknownPlaceholderMessage(where, template, placeholder, available));
  }
  return { placeholder, argIndex, path };
}

function placeholderValue(part: Exclude<Part, string>, args: unknown[], where: string): string {
  let value: unknown = args[part.argIndex];
  for (const segment of part.path) {
    if (value === undefined || value === null) break;
    value = (value as Record<string, unknown>)[segment];
  }
  const bad = (reason: string) =>
    new InvalidLockKeyError(badPlaceholderValueMessage(where, part.placeholder, value, reason));
  switch (typeof value) {
    case 'string':
      if (value.length === 0) throw bad('and an empty value cannot identify a lock');
      if (value.length > MAX_KEY_PART_LENGTH) {
        throw bad(`longer than the ${MAX_KEY_PART_LENGTH} characters a placeholder may contribute`);
      }
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw bad('which cannot identify a lock');
      return String(value);
    case 'bigint':
    case 'boolean':
      return String(value);
    case 'undefined':
      throw bad('so the value is missing');
    default:
      throw bad(
        value === null
          ? 'so the value is missing'
          : 'and only strings and numbers can be part of a key (name a property: {{dto.id}})',
      );
  }
}

function callKeyFunction(
  fn: (...params: unknown[]) => unknown,
  args: unknown[],
  where: string,
): string {
  let key: unknown;
  try {
    key = fn(...args);
  } catch (err) {
    throw new InvalidLockKeyError(keyFunctionThrewMessage(where, err), { cause: err });
  }
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidLockKeyError(badKeyFunctionResultMessage(where, key));
  }
  return key;
}

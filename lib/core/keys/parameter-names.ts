/** The declared parameters of a function: their names (`null` for destructured ones) and rest. */
export interface ParameterList {
  names: (string | null)[];
  hasRest: boolean;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const OPENERS: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

/**
 * Reads parameter names from a method's source, so `{{id}}` can name a parameter. Works on
 * unminified code, which is what Nest apps run (tsc keeps parameter names).
 *
 * @example
 * getParameterNames(function pay(id, { amount }, ...rest) {}); // { names: ['id', null, 'rest'], hasRest: true }
 */
export function getParameterNames(fn: (...args: never[]) => unknown): ParameterList {
  const source = stripComments(Function.prototype.toString.call(fn));
  // A computed method name (`[key](a) {}`) may itself hold parentheses: skip past it.
  const start = source.indexOf('(', source.startsWith('[') ? closingIndex(source, 0) : 0);
  if (start < 0) return { names: [], hasRest: false };
  const end = closingIndex(source, start);
  const params = splitTopLevel(source.slice(start + 1, end));
  const names: (string | null)[] = [];
  let hasRest = false;
  for (const raw of params) {
    let param = raw.trim();
    if (!param) continue;
    if (param.startsWith('...')) {
      hasRest = true;
      param = param.slice(3).trim();
    }
    const name = param.split('=')[0].trim();
    names.push(IDENTIFIER.test(name) ? name : null);
  }
  return { names, hasRest };
}

/** Index of the bracket that closes the one at `open`, skipping strings and nested brackets. */
function closingIndex(source: string, open: number): number {
  const stack: string[] = [];
  for (let i = open; i < source.length; i++) {
    const ch = source[i];
    if (ch === '"' || ch === "'" || ch === '`') {
      i = skipString(source, i);
    } else if (OPENERS[ch]) {
      stack.push(OPENERS[ch]);
    } else if (ch === stack[stack.length - 1]) {
      stack.pop();
      if (stack.length === 0) return i;
    }
  }
  return source.length;
}

function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < list.length; i++) {
    const ch = list[i];
    if (ch === '"' || ch === "'" || ch === '`') i = skipString(list, i);
    else if (OPENERS[ch]) depth++;
    else if (ch === ')' || ch === ']' || ch === '}') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(list.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(list.slice(from));
  return parts;
}

function skipString(source: string, open: number): number {
  const quote = source[open];
  for (let i = open + 1; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === quote) return i;
  }
  return source.length;
}

// Strings are matched too and kept, so `//` or `/*` inside a default value ('http://…') stays.
const STRING_OR_COMMENT =
  /('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`)|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g;

function stripComments(source: string): string {
  return source.replace(STRING_OR_COMMENT, (_match, string: string | undefined) => string ?? '');
}

import type { z } from 'zod';

/**
 * A zod schema compiled into a plain predicate for the hot path (zod's safeParse was the largest
 * single cost of a batched append after SQLite itself). The predicate is one-sided: true means
 * the schema accepts the value AND returns a value equal to it up to the order of object keys
 * (no string changed by a transform; symbol keys, which JSON drops, aside); false means "not
 * sure", and the caller asks zod, which then decides and names the problems. So a predicate can
 * only be stricter than its schema, never laxer, and the schema stays the one definition of the
 * concept. Key order is free because the contract only decides acceptance: pulled events arrive
 * in the server's canonical JSON (sorted keys), and an order-bound check sent every one to zod.
 *
 * Only the schema features the event types use are compiled; anything else (unknown node
 * types, checks or string formats) makes compileFastPath return null: always zod.
 * test/protocol/schema-fast-path.test.ts holds every compiled event type to its schema.
 */
export type FastPredicate = (value: unknown) => boolean;

/** What the compiler reads of zod 4's internal definitions (the shape is stable within 4.x). */
interface Def {
  type: string;
  checks?: { _zod: { def: CheckDef } }[];
  shape?: Record<string, Internals>;
  catchall?: Internals;
  element?: Internals;
  innerType?: Internals;
  in?: Internals;
  out?: Internals;
  entries?: Record<string, unknown>;
  format?: string;
  pattern?: RegExp;
  coerce?: boolean;
}
interface CheckDef {
  check: string;
  format?: string;
  value?: number | bigint;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
  pattern?: RegExp;
  tx?: (v: unknown) => unknown;
  fn?: (v: unknown) => unknown;
}
interface Internals {
  _zod: { def: Def };
}

class Unsupported extends Error {}

export function compileFastPath(schema: z.ZodType): FastPredicate | null {
  try {
    return compile(schema as unknown as Internals);
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
}

function compile(schema: Internals): FastPredicate {
  const def = schema._zod.def;
  switch (def.type) {
    case 'string':
      return compileString(def);
    case 'number':
      return compileNumber(def);
    case 'object':
      return compileObject(def);
    case 'array':
      return compileArray(def);
    case 'nullable': {
      const inner = compile(def.innerType!);
      return (v) => v === null || inner(v);
    }
    case 'enum': {
      if (def.checks?.length) throw new Unsupported();
      const values = Object.values(def.entries ?? {});
      if (!values.every((x) => typeof x === 'string')) throw new Unsupported();
      const allowed = new Set(values as string[]);
      return (v) => typeof v === 'string' && allowed.has(v);
    }
    case 'pipe': {
      // Every value this predicate accepts comes out of `in` unchanged, so `out` sees it as is.
      const a = compile(def.in!);
      const b = compile(def.out!);
      return (v) => a(v) && b(v);
    }
    // optional: a key present with `undefined`, or absent, is the object's business (see below).
    default:
      throw new Unsupported();
  }
}

function compileString(def: Def): FastPredicate {
  if (def.coerce) throw new Unsupported();
  const tests: FastPredicate[] = [];
  // A string format schema (z.iso.datetime()) is its own check: its pattern.
  if (def.format !== undefined) {
    if (def.format !== 'datetime' || !def.pattern) throw new Unsupported();
    tests.push(regexTest(def.pattern));
  }
  for (const c of def.checks ?? []) {
    const cd = c._zod.def;
    switch (cd.check) {
      case 'min_length': {
        const min = cd.minimum!;
        tests.push((s) => (s as string).length >= min);
        break;
      }
      case 'max_length': {
        const max = cd.maximum!;
        tests.push((s) => (s as string).length <= max);
        break;
      }
      case 'string_format':
        if (cd.format !== 'regex' || !cd.pattern) throw new Unsupported();
        tests.push(regexTest(cd.pattern));
        break;
      case 'overwrite': {
        // A transform (trim): only strings it leaves as they are, so the output equals the input.
        const tx = cd.tx!;
        tests.push((s) => tx(s) === s);
        break;
      }
      case 'custom':
        tests.push(customTest(cd));
        break;
      default:
        throw new Unsupported();
    }
  }
  return passesAll((v) => typeof v === 'string', tests);
}

function compileNumber(def: Def): FastPredicate {
  if (def.coerce) throw new Unsupported();
  const tests: FastPredicate[] = [];
  for (const c of def.checks ?? []) {
    const cd = c._zod.def;
    switch (cd.check) {
      case 'number_format':
        if (cd.format !== 'safeint') throw new Unsupported();
        tests.push((n) => Number.isSafeInteger(n));
        break;
      case 'greater_than': {
        const min = Number(cd.value);
        tests.push(cd.inclusive ? (n) => (n as number) >= min : (n) => (n as number) > min);
        break;
      }
      case 'less_than': {
        const max = Number(cd.value);
        tests.push(cd.inclusive ? (n) => (n as number) <= max : (n) => (n as number) < max);
        break;
      }
      case 'custom':
        tests.push(customTest(cd));
        break;
      default:
        throw new Unsupported();
    }
  }
  // zod's number refuses NaN and ±Infinity before any check.
  return passesAll((v) => typeof v === 'number' && Number.isFinite(v), tests);
}

function compileArray(def: Def): FastPredicate {
  let min = 0;
  let max = Infinity;
  for (const c of def.checks ?? []) {
    const cd = c._zod.def;
    if (cd.check === 'max_length') max = cd.maximum!;
    else if (cd.check === 'min_length') min = cd.minimum!;
    else throw new Unsupported();
  }
  const element = compile(def.element!);
  return (v) => {
    if (!Array.isArray(v) || v.length < min || v.length > max) return false;
    // A hole reads as undefined, which no compiled element accepts.
    for (let i = 0; i < v.length; i++) if (!element(v[i])) return false;
    return true;
  };
}

function compileObject(def: Def): FastPredicate {
  // Only strict objects: a plain object's unknown keys would be stripped from zod's output.
  if (def.catchall?._zod.def.type !== 'never' || def.checks?.length) throw new Unsupported();
  const keys = Object.keys(def.shape!);
  const fields = keys.map((k) => {
    const field = def.shape![k]!;
    const optional = field._zod.def.type === 'optional';
    return { key: k, optional, test: compile(optional ? field._zod.def.innerType! : field) };
  });
  const byKey = new Map(fields.map((f) => [f.key, f]));
  const required = fields.filter((f) => !f.optional).length;
  return (v) => {
    if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
    const o = v as Record<string, unknown>;
    // Own enumerable keys (the prototype is Object's, which has none), in any order. Each must be
    // the schema's (an own `__proto__` is not: zod decides) and hold a value the field accepts
    // (undefined never is: left to zod).
    let present = 0;
    for (const k in o) {
      const field = byKey.get(k);
      if (field === undefined || !field.test(o[k])) return false;
      if (!field.optional) present++;
    }
    return present === required;
  };
}

/** The type guard, then every check of the schema in order (a string's or number's checks). */
function passesAll(guard: FastPredicate, tests: readonly FastPredicate[]): FastPredicate {
  return (v) => {
    if (!guard(v)) return false;
    for (const t of tests) if (!t(v)) return false;
    return true;
  };
}

function regexTest(pattern: RegExp): FastPredicate {
  if (pattern.global || pattern.sticky) throw new Unsupported();
  return (s) => pattern.test(s as string);
}

/** A refinement: the schema's own function; only a plain `true` counts as a pass. */
function customTest(cd: CheckDef): FastPredicate {
  const fn = cd.fn;
  if (typeof fn !== 'function') throw new Unsupported();
  return (v) => fn(v) === true;
}

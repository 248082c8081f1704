/**
 * JSON with object keys sorted at every level, so equal values always give equal strings
 * (content comparison, and the server's hash chain: a database (JSONB reorders keys) or a client
 * may serialise the same value differently). Written in one pass, without copying the value,
 * and without recursion: a value nested 100,000 levels deep (which JSON.parse accepts) is
 * written with an explicit stack instead of overflowing the call stack.
 *
 * Plain objects (prototype Object.prototype or null, as JSON.parse makes them, `__proto__` keys
 * included) are sorted; keys whose value has no JSON form (undefined, functions) are left out,
 * and such values inside arrays, or at the top, are written as null. Other objects (Date, class
 * instances) are written as JSON.stringify writes them.
 */
export function canonicalJson(value: unknown): string {
  const w = new Writer();
  return w.emit(value) ? w.run() : 'null';
}

/**
 * JSON text for a response: JSON.stringify, and where that runs out of stack (a value nested
 * thousands of levels deep, stored before the event contract refused such data), the iterative
 * canonical form (the same value, keys sorted).
 */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof RangeError) return canonicalJson(value);
    throw err;
  }
}

type Frame = { arr: readonly unknown[]; i: number } | { obj: Record<string, unknown>; keys: string[]; i: number; first: boolean };

class Writer {
  private out = '';
  private readonly stack: Frame[] = [];

  /** Write a scalar, or open a container (its frame is pushed); false when the value has no JSON form. */
  emit(v: unknown): boolean {
    if (v === null) {
      this.out += 'null';
      return true;
    }
    if (typeof v !== 'object') return this.native(v);
    if (Array.isArray(v)) {
      this.out += '[';
      this.stack.push({ arr: v, i: 0 });
      return true;
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return this.native(v);
    this.out += '{';
    this.stack.push({ obj: v as Record<string, unknown>, keys: Object.keys(v).sort(), i: 0, first: true });
    return true;
  }

  private native(v: unknown): boolean {
    const text = JSON.stringify(v) as string | undefined;
    if (text === undefined) return false;
    this.out += text;
    return true;
  }

  run(): string {
    const { stack } = this;
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!;
      if ('arr' in f) {
        if (f.i >= f.arr.length) {
          this.out += ']';
          stack.pop();
          continue;
        }
        if (f.i > 0) this.out += ',';
        if (!this.emit(f.arr[f.i++])) this.out += 'null';
        continue;
      }
      if (f.i >= f.keys.length) {
        this.out += '}';
        stack.pop();
        continue;
      }
      const key = f.keys[f.i++]!;
      const mark = this.out.length;
      this.out += (f.first ? '' : ',') + JSON.stringify(key) + ':';
      if (this.emit(f.obj[key])) f.first = false;
      else this.out = this.out.slice(0, mark);
    }
    return this.out;
  }
}

/**
 * JSON with object keys sorted at every level, so equal values always give equal strings
 * (content comparison, and the server's hash chain: a database (JSONB reorders keys) or a client
 * may serialise the same value differently). Written in one pass, without copying the value.
 *
 * Plain objects (prototype Object.prototype or null, as JSON.parse makes them, `__proto__` keys
 * included) are sorted; keys whose value has no JSON form (undefined, functions) are left out,
 * and such values inside arrays, or at the top, are written as null. Other objects (Date, class
 * instances) are written as JSON.stringify writes them.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'null';
}

function write(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += write(value[i]) ?? 'null';
    }
    return out + ']';
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return JSON.stringify(value);
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const text = write(obj[key]);
    if (text === undefined) continue;
    out += (first ? '' : ',') + JSON.stringify(key) + ':' + text;
    first = false;
  }
  return out + '}';
}

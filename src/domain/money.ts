import { z } from 'zod';

/** Money is always integer minor units (cents); never float arithmetic. */
export const MinorUnits = z
  .number()
  .int('amount must be a whole number of minor units (e.g. cents)')
  .nonnegative('amount must not be negative')
  .max(Number.MAX_SAFE_INTEGER);
export type MinorUnits = z.infer<typeof MinorUnits>;

export const PositiveMinorUnits = MinorUnits.refine((n) => n > 0, 'amount must be greater than zero');

export const Currency = z.string().regex(/^[A-Z]{3}$/, 'currency must be an ISO 4217 code like USD');
export type Currency = z.infer<typeof Currency>;

/** Exact decimal string (or number as written) in major units → integer minor units. */
export function toMinorUnits(value: string | number, fractionDigits = 2): number {
  const text = typeof value === 'number' ? numberToPlainString(value) : value.trim();
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new RangeError(`not a decimal amount: ${JSON.stringify(value)}`);
  const [, sign, whole, frac = ''] = match;
  if (frac.length > fractionDigits && /[1-9]/.test(frac.slice(fractionDigits))) {
    throw new RangeError(`amount ${text} has more than ${fractionDigits} decimal places`);
  }
  const minor = BigInt(whole! + frac.padEnd(fractionDigits, '0').slice(0, fractionDigits));
  const result = Number(sign === '-' ? -minor : minor);
  if (!Number.isSafeInteger(result)) throw new RangeError(`amount ${text} is too large`);
  return result;
}

/** Integer minor units → decimal string in major units, e.g. 12345 → "123.45". */
export function formatMinor(minor: number, fractionDigits = 2): string {
  const negative = minor < 0;
  const digits = Math.abs(minor).toString().padStart(fractionDigits + 1, '0');
  const whole = digits.slice(0, digits.length - fractionDigits);
  const frac = digits.slice(digits.length - fractionDigits);
  return `${negative ? '-' : ''}${whole}${fractionDigits > 0 ? '.' + frac : ''}`;
}

function numberToPlainString(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite amount: ${n}`);
  // toString gives the shortest round-tripping decimal, e.g. 0.1 → "0.1" (not 0.1000000000000000055…).
  const s = n.toString();
  if (!/e/i.test(s)) return s;
  return n.toFixed(20).replace(/0+$/, '').replace(/\.$/, '');
}

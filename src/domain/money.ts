import { z } from 'zod';
import { isIsoCurrency, minorUnitDigits } from './currencies.js';

/** Money is always integer minor units (cents); never float arithmetic. */
export const MinorUnits = z
  .number()
  .int('amount must be a whole number of minor units (e.g. cents)')
  .nonnegative('amount must not be negative')
  .max(Number.MAX_SAFE_INTEGER);
export type MinorUnits = z.infer<typeof MinorUnits>;

export const PositiveMinorUnits = MinorUnits.refine((n) => n > 0, 'amount must be greater than zero');

export const Currency = z
  .string({ message: 'choose a currency, e.g. USD, EUR or JPY' })
  .regex(/^[A-Z]{3}$/, 'a currency is three capital letters, e.g. USD, EUR or JPY')
  .refine(isIsoCurrency, {
    error: (iss) => `${String(iss.input)} is not a currency in the ISO 4217 list; use a code such as USD, EUR, GBP or JPY`,
  });
export type Currency = z.infer<typeof Currency>;

/** Exact decimal string (or number as written) in major units → integer minor units. */
export function toMinorUnits(value: string | number, fractionDigits = 2): number {
  const text = typeof value === 'number' ? numberToPlainString(value) : value.trim();
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new RangeError(`not a decimal amount: ${JSON.stringify(value)}`);
  const [, sign, whole, frac = ''] = match;
  if (frac.length > fractionDigits && /[1-9]/.test(frac.slice(fractionDigits))) {
    throw new RangeError(`amount ${text} has more than ${fractionDigits} decimal place${fractionDigits === 1 ? '' : 's'} (the currency's minor unit)`);
  }
  const minor = BigInt(whole! + frac.padEnd(fractionDigits, '0').slice(0, fractionDigits));
  const result = Number(sign === '-' ? -minor : minor);
  if (!Number.isSafeInteger(result)) throw new RangeError(`amount ${text} is too large`);
  return result;
}

/**
 * A decimal amount in major units as the seed API takes it: a JSON number (19.99) or a decimal
 * string ("19.99"). Its exact value is checked against a currency by majorToMinor.
 */
export const MajorAmount = z.union([z.number(), z.string()]);
export type MajorAmount = z.infer<typeof MajorAmount>;

/**
 * Exact major → minor conversion in the currency's ISO 4217 digits, by decimal string arithmetic:
 * "19.99" and 19.99 both give 1999 USD cents; 19.999 USD is refused, never rounded.
 */
export function majorToMinor(value: MajorAmount, currency: string): number {
  const digits = minorUnitDigits(currency);
  const minor = toMinorUnits(value, digits);
  if (minor < 0) throw new RangeError(`amount ${String(value)} must not be negative`);
  return minor;
}

/**
 * Integer minor units → the same amount in major units as a JSON number (1999 USD → 19.99,
 * 500 JPY → 500). Built from the exact decimal string, so it prints as that string.
 */
export function minorToMajor(minor: number, currency: string | null): number {
  return Number(formatMinor(minor, minorUnitDigits(currency ?? DEFAULT_SEED_CURRENCY)));
}

/** The seed system predates multi-currency: its amounts, and orders without a currency, are US dollars. */
export const DEFAULT_SEED_CURRENCY = 'USD';

/** Integer minor units → decimal string in major units, e.g. 12345 → "123.45". */
export function formatMinor(minor: number, fractionDigits = 2): string {
  const negative = minor < 0;
  const digits = Math.abs(minor).toString().padStart(fractionDigits + 1, '0');
  const whole = digits.slice(0, digits.length - fractionDigits);
  const frac = digits.slice(digits.length - fractionDigits);
  return `${negative ? '-' : ''}${whole}${fractionDigits > 0 ? '.' + frac : ''}`;
}

/**
 * Integer minor units → the amount people read in a message, in the currency's own digits and
 * grouped by thousands (123456789 USD → "1,234,567.89 USD", 500 JPY → "500 JPY"). Plain ASCII
 * grouping so a message reads the same in a log, the server and any locale.
 */
export function formatMoney(minor: number, currency: string | null): string {
  const code = currency && isIsoCurrency(currency) ? currency : DEFAULT_SEED_CURRENCY;
  const plain = formatMinor(minor, minorUnitDigits(code));
  const [whole = '', frac] = plain.split('.');
  const sign = whole.startsWith('-') ? '-' : '';
  const grouped = whole.replace('-', '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${grouped}${frac !== undefined ? '.' + frac : ''} ${currency ?? code}`;
}

function numberToPlainString(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite amount: ${n}`);
  // toString gives the shortest round-tripping decimal, e.g. 0.1 → "0.1" (not 0.1000000000000000055…).
  const s = n.toString();
  if (!/e/i.test(s)) return s;
  return n.toFixed(20).replace(/0+$/, '').replace(/\.$/, '');
}

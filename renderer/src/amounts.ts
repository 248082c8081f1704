import { CURRENCY_MINOR_DIGITS } from '../../src/domain/currencies.js';
import { formatMinor } from '../../src/domain/money.js';

/**
 * Money as people type it and read it. Parsing is string arithmetic (BigInt), never floating
 * point; the number of decimals is the currency's own, from the domain's ISO 4217 table (the one
 * the store converts with: a browser's Intl data can differ by version, e.g. for IQD or ISK), and
 * separators follow the locale.
 */

/** Largest amount the store keeps, in minor units (the domain's MinorUnits bound). */
export const MAX_MINOR = BigInt(Number.MAX_SAFE_INTEGER);

/** The currency's minor-unit digits (USD 2, JPY 0, KWD 3); 2 for a code not in ISO 4217. */
export function currencyDigits(currency: string): number {
  return CURRENCY_MINOR_DIGITS.get(currency) ?? 2;
}

export function separators(locale?: string): { group: string; decimal: string } {
  const parts = new Intl.NumberFormat(locale).formatToParts(12345.6);
  return {
    group: parts.find((p) => p.type === 'group')?.value ?? ',',
    decimal: parts.find((p) => p.type === 'decimal')?.value ?? '.',
  };
}

export type ParsedAmount = { ok: true; minor: bigint } | { ok: false; message: string };

const SPACES = /[\s\u00a0\u202f]/g;

function example(digits: number, locale?: string): string {
  return new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(1234.5);
}

/** Are these grouped digits well placed (1,234,567: groups of three after the first)? */
function validGrouping(whole: string, group: string): boolean {
  const parts = whole.split(group);
  if (parts.length === 1) return true;
  return /^\d{1,3}$/.test(parts[0]!) && parts.slice(1).every((p) => /^\d{3}$/.test(p));
}

/**
 * "1,000.00", "$5", "USD 12.50", "5,50" (where the locale writes decimals with a comma), "1 234,5".
 * Refuses, in a sentence, what it cannot read exactly: signs, letters, misplaced separators,
 * more decimals than the currency has, amounts above what the store keeps.
 */
export function parseAmount(text: string, currency: string, locale?: string): ParsedAmount {
  const digits = currencyDigits(currency);
  const { group, decimal } = separators(locale);
  let t = text.replace(SPACES, '');
  if (t === '') return { ok: false, message: `Enter an amount, for example ${example(digits, locale)}.` };
  if (/^[-−]|[-−]$/.test(t) || /^\(.*\)$/.test(t)) return { ok: false, message: 'Amounts cannot be negative.' };
  // A currency sign or code before or after the number: "$5", "5 €", "USD 5".
  t = t.replace(/^(\p{Sc}|[A-Za-z]{3})/u, '').replace(/(\p{Sc}|[A-Za-z]{3})$/u, '');
  if (!/^[\d.,'’]+$/.test(t)) return { ok: false, message: `That is not an amount. Type digits, for example ${example(digits, locale)}.` };
  const groupChars = new Set([group.replace(SPACES, ''), "'", '’'].filter(Boolean));
  let whole = t;
  let frac = '';
  const lastDecimal = t.lastIndexOf(decimal);
  if (lastDecimal >= 0 && !groupChars.has(decimal)) {
    whole = t.slice(0, lastDecimal);
    frac = t.slice(lastDecimal + 1);
  } else if (decimal === ',' && /^\d+\.\d{1,2}$/.test(t)) {
    // A comma locale, but "5.50" typed on a numeric keypad: a dot with one or two decimals is a decimal point.
    [whole, frac] = t.split('.') as [string, string];
  }
  for (const g of groupChars) {
    if (whole.includes(g) && !validGrouping(whole, g)) {
      return { ok: false, message: `“${text.trim()}” is not a well-written amount here. Write it like ${example(digits, locale)}.` };
    }
    whole = whole.split(g).join('');
  }
  if (!/^\d*$/.test(whole) || !/^\d*$/.test(frac) || whole + frac === '') {
    return { ok: false, message: `“${text.trim()}” is not a well-written amount here. Write it like ${example(digits, locale)}.` };
  }
  if (frac.length > digits && /[1-9]/.test(frac.slice(digits))) {
    return {
      ok: false,
      message: digits === 0 ? `${currency} amounts have no decimals.` : `${currency} amounts have at most ${digits} decimal place${digits === 1 ? '' : 's'}.`,
    };
  }
  const minor = BigInt((whole || '0') + frac.padEnd(digits, '0').slice(0, digits));
  if (minor > MAX_MINOR) return { ok: false, message: `That is more than the largest amount this app keeps (${formatAmount(MAX_MINOR, currency, locale)}).` };
  return { ok: true, minor };
}

/** Minor units → "USD 1,234.50" in the locale's grouping; exact for any size (formats the decimal string). */
export function formatAmount(minor: bigint | number, currency: string | null | undefined, locale?: string): string {
  const code = currency ?? '';
  let digits = 2;
  let fmt: Intl.NumberFormat;
  try {
    digits = currencyDigits(code);
    fmt = new Intl.NumberFormat(locale, {
      style: 'currency',
      currency: code,
      currencyDisplay: 'code',
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
  } catch {
    fmt = new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });
    const value = formatMinor(Number(minor), digits);
    return `${fmt.format(value as unknown as number)} ${code}`.trim();
  }
  const big = typeof minor === 'bigint' ? minor : BigInt(minor);
  const negative = big < 0n;
  const abs = (negative ? -big : big).toString().padStart(digits + 1, '0');
  const decimalText = digits > 0 ? `${abs.slice(0, abs.length - digits)}.${abs.slice(abs.length - digits)}` : abs;
  // format() takes a decimal string exactly (no float on the way).
  return fmt.format(`${negative ? '-' : ''}${decimalText}` as unknown as number);
}

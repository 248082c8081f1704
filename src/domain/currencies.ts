/**
 * ISO 4217 active currency codes and their minor-unit digits (the number of decimals a major
 * amount may have). Money is stored in integer minor units; this table is what converts between
 * the decimal major units people and the seed API speak (19.99 USD) and the stored integers (1999).
 * Funds codes (BOV, CHE, ...) are included; precious metals and testing codes (XAU, XTS, XXX)
 * have no minor unit and are not currencies an order can be taken in.
 */
const DIGITS_0 = 'BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF';
const DIGITS_3 = 'BHD IQD JOD KWD LYD OMR TND';
const DIGITS_4 = 'CLF UYW';
const DIGITS_2 =
  'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD ' +
  'CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS ' +
  'GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL ' +
  'MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK ' +
  'PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS ' +
  'TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG';

function entries(codes: string, digits: number): [string, number][] {
  return codes.split(' ').map((c) => [c, digits]);
}

export const CURRENCY_MINOR_DIGITS: ReadonlyMap<string, number> = new Map([
  ...entries(DIGITS_0, 0),
  ...entries(DIGITS_2, 2),
  ...entries(DIGITS_3, 3),
  ...entries(DIGITS_4, 4),
]);

export function isIsoCurrency(code: string): boolean {
  return CURRENCY_MINOR_DIGITS.has(code);
}

/** Decimals of one major unit of `code` (USD 2, JPY 0, KWD 3); throws for a code not in ISO 4217. */
export function minorUnitDigits(code: string): number {
  const d = CURRENCY_MINOR_DIGITS.get(code);
  if (d === undefined) throw new RangeError(`${JSON.stringify(code)} is not an ISO 4217 currency code`);
  return d;
}

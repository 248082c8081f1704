// A small SVG bar-chart generator: the charts in BENCHMARKS.md are drawn from bench/results/latest.json
// by this code, never by hand. Pure functions from data to SVG text.

export interface Bar {
  label: string;
  value: number;
  /** Text printed after the bar (defaults to the value). */
  note?: string;
  /** Bar colour class: met (green), missed (red), or neutral (blue/grey series colours). */
  tone?: 'met' | 'missed' | 'neutral' | 'raw' | 'ours' | 'emmett';
}

export interface BarChartSpec {
  title: string;
  subtitle?: string;
  bars: Bar[];
  /** Unit appended to the axis ticks, e.g. "ev/s". */
  unit?: string;
  /** A vertical reference line (e.g. the target, 1.0 = target met). */
  reference?: { value: number; label: string };
  /** Logarithmic x axis (for values spanning orders of magnitude). */
  log?: boolean;
}

const COLOURS: Record<NonNullable<Bar['tone']>, string> = {
  met: '#2e7d32',
  missed: '#c62828',
  neutral: '#546e7a',
  raw: '#90a4ae',
  ours: '#1565c0',
  emmett: '#ef6c00',
};

export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Human-readable number: 1234567 → "1.23M", 0.123 → "0.123". */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(n / 1e3).toPrecision(3)}k`;
  if (a >= 100) return String(Math.round(n));
  if (a >= 1) return String(Math.round(n * 100) / 100);
  if (a === 0) return '0';
  return String(Number(n.toPrecision(3)));
}

/** Ticks for a linear axis: about five round steps from 0 to max. */
export function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= rough) ?? rough;
  const ticks: number[] = [];
  for (let t = 0; t <= max + step * 0.999; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  return Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
}

/** Horizontal bar chart, one bar per row, optional reference line. Returns a complete SVG document. */
export function barChart(spec: BarChartSpec): string {
  const bars = spec.bars.filter((b) => Number.isFinite(b.value));
  const labelW = Math.min(320, Math.max(120, ...bars.map((b) => b.label.length * 7 + 16)));
  const plotW = 420;
  const noteW = 150;
  const rowH = 26;
  const top = spec.subtitle ? 58 : 42;
  const width = labelW + plotW + noteW;
  const height = top + bars.length * rowH + 36;

  const values = bars.map((b) => b.value).concat(spec.reference ? [spec.reference.value] : []);
  const positive = values.filter((v) => v > 0);
  let x: (v: number) => number;
  let ticks: number[];
  if (spec.log && positive.length > 0) {
    ticks = logTicks(Math.min(...positive), Math.max(...positive));
    const lo = Math.log10(ticks[0]!);
    const hi = Math.log10(ticks[ticks.length - 1]!);
    x = (v) => labelW + (v > 0 ? ((Math.log10(v) - lo) / (hi - lo || 1)) * plotW : 0);
  } else {
    ticks = linearTicks(Math.max(0, ...values) * 1.05);
    const max = ticks[ticks.length - 1]!;
    x = (v) => labelW + (Math.max(0, v) / max) * plotW;
  }

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="12" y="22" font-size="15" font-weight="bold" fill="#212121">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle) out.push(`<text x="12" y="40" fill="#616161">${escapeXml(spec.subtitle)}</text>`);
  const axisY = top + bars.length * rowH + 4;
  for (const t of ticks) {
    const tx = x(t).toFixed(1);
    out.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${axisY}" stroke="#eeeeee"/>`);
    out.push(`<text x="${tx}" y="${axisY + 14}" text-anchor="middle" fill="#757575">${escapeXml(formatNumber(t))}${spec.unit ? escapeXml(` ${spec.unit}`) : ''}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const w = Math.max(1, x(b.value) - labelW);
    out.push(`<text x="${labelW - 8}" y="${y + 16}" text-anchor="end" fill="#212121">${escapeXml(b.label)}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLOURS[b.tone ?? 'neutral']}" rx="2"/>`);
    out.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 16}" fill="#424242">${escapeXml(b.note ?? formatNumber(b.value))}</text>`);
  });
  if (spec.reference) {
    const rx = x(spec.reference.value).toFixed(1);
    out.push(`<line x1="${rx}" y1="${top - 6}" x2="${rx}" y2="${axisY}" stroke="#212121" stroke-width="1.5" stroke-dasharray="5,3"/>`);
    out.push(`<text x="${rx}" y="${top - 9}" text-anchor="middle" fill="#212121" font-size="11">${escapeXml(spec.reference.label)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export interface TargetCheck {
  name: string;
  /** Measured value and the target, in the same unit. */
  actual: number;
  target: number;
  unit: string;
  /** 'min': actual must be ≥ target; 'max': actual must be ≤ target. */
  kind: 'min' | 'max';
}

/** How far towards the target: ≥ 1 means met, whichever direction the target points. */
export function fractionOfTarget(t: TargetCheck): number {
  if (t.kind === 'min') return t.actual / t.target;
  return t.actual > 0 ? t.target / t.actual : Infinity;
}

export const targetMet = (t: TargetCheck): boolean => (t.kind === 'min' ? t.actual >= t.target : t.actual <= t.target);

/** One bar per target, scaled so the dashed line at 1.0 is the target. */
export function targetsChart(title: string, targets: TargetCheck[]): string {
  return barChart({
    title,
    subtitle: 'bar = measured ÷ target (for "at most" targets: target ÷ measured); right of the line = met',
    bars: targets.map((t) => ({
      label: t.name,
      value: Math.min(fractionOfTarget(t), 50),
      note: `${formatNumber(t.actual)} ${t.unit} (${t.kind === 'min' ? '≥' : '≤'} ${formatNumber(t.target)})`,
      tone: targetMet(t) ? 'met' : 'missed',
    })),
    reference: { value: 1, label: 'target' },
    log: targets.some((t) => fractionOfTarget(t) > 20 || fractionOfTarget(t) < 0.05),
  });
}

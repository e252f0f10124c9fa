// Numbers as the console shows them: the API's exact decimals, rounded for display only.
// unit: count, percent (already x 100), ratio or money (the tenant's currency).
import { language } from "./i18n.js";

function locale() {
  return language() === "ja" ? "ja-JP" : "en-US";
}

/** Decimal strings from the API to numbers (null stays null). */
export function num(value) {
  return value === null || value === undefined ? null : Number(value);
}

export function formatValue(value, unit, currency = "JPY") {
  const n = num(value);
  if (n === null || Number.isNaN(n)) return "—";
  if (unit === "percent") {
    return `${n.toLocaleString(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 })}%`;
  }
  if (unit === "ratio") return n.toLocaleString(locale(), { maximumFractionDigits: 2 });
  if (unit === "money") {
    return n.toLocaleString(locale(), { style: "currency", currency, maximumFractionDigits: 0 });
  }
  return n.toLocaleString(locale(), { maximumFractionDigits: 2 });
}

/** A ratio (0.8123) as a percentage with one decimal ("81.2%"). */
export function formatRatio(ratio) {
  const n = num(ratio);
  if (n === null || !Number.isFinite(n)) return "—";
  return `${(n * 100).toLocaleString(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 })}%`;
}

/** The change from `previous` to `value` in percent, signed ("+12.5%"); "—" without a base. */
export function formatChange(value, previous) {
  const a = num(value);
  const b = num(previous);
  if (a === null || b === null || b === 0) return "—";
  const change = ((a - b) / Math.abs(b)) * 100;
  const text = change.toLocaleString(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return `${change > 0 ? "+" : ""}${text}%`;
}

// Period labels as the API reads them (kpis/periods.py): ISO weeks 2026-W48, months 2026-11,
// fiscal quarters FY2026-Q2 (labelled by the calendar year the fiscal year starts in).
// Dates are UTC-midnight Date objects standing for the tenant's local calendar dates.

const DAY_MS = 86400000;
const pad = (n) => String(n).padStart(2, "0");

export function isoDate(day) {
  return `${day.getUTCFullYear()}-${pad(day.getUTCMonth() + 1)}-${pad(day.getUTCDate())}`;
}

export function addDays(day, n) {
  return new Date(day.getTime() + n * DAY_MS);
}

function utc(year, month, date) {
  return new Date(Date.UTC(year, month - 1, date));
}

/** Today's date in the tenant's time zone (e.g. "Asia/Tokyo"). */
export function todayIn(timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(new Date());
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return utc(get("year"), get("month"), get("day"));
}

/** The period of `grain` (WEEK, MONTH, QUARTER) containing `day`: {grain, label, start, end}. */
export function periodContaining(grain, day, fiscalYearStartMonth = 4) {
  const year = day.getUTCFullYear();
  const month = day.getUTCMonth() + 1;
  if (grain === "WEEK") {
    const start = addDays(day, -((day.getUTCDay() + 6) % 7));
    const thursday = addDays(start, 3);
    const isoYear = thursday.getUTCFullYear();
    const week = 1 + Math.floor((thursday - utc(isoYear, 1, 1)) / DAY_MS / 7);
    return { grain, label: `${isoYear}-W${pad(week)}`, start, end: addDays(start, 7) };
  }
  if (grain === "MONTH") {
    return { grain, label: `${year}-${pad(month)}`, start: utc(year, month, 1), end: utc(year, month + 1, 1) };
  }
  if (grain === "QUARTER") {
    const fiscalYear = month >= fiscalYearStartMonth ? year : year - 1;
    const quarter = Math.floor(((month - fiscalYearStartMonth + 12) % 12) / 3);
    const firstMonth = fiscalYearStartMonth + 3 * quarter; // may exceed 12: Date.UTC rolls over
    return {
      grain,
      label: `FY${fiscalYear}-Q${quarter + 1}`,
      start: utc(fiscalYear, firstMonth, 1),
      end: utc(fiscalYear, firstMonth + 3, 1),
    };
  }
  throw new Error(`Unknown grain ${grain}`);
}

/** The period `steps` periods after (negative: before) `period`. */
export function shiftPeriod(period, steps, fiscalYearStartMonth = 4) {
  let current = period;
  for (let i = 0; i < Math.abs(steps); i += 1) {
    const day = steps > 0 ? current.end : addDays(current.start, -1);
    current = periodContaining(current.grain, day, fiscalYearStartMonth);
  }
  return current;
}

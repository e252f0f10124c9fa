// The dashboard page: pickers, widgets and the language switch. Data comes only from
// api.js (the public GraphQL API); this module renders it.
import { acknowledgeAlert, loadContext, loadDashboard, loadReports, loadScopes } from "./api.js";
import { lineChart } from "./charts.js";
import { formatChange, formatRatio, formatValue, num } from "./format.js";
import { initialLanguage, kpiName, language, setLanguage, t } from "./i18n.js";
import { isoDate, periodContaining, shiftPeriod, todayIn } from "./periods.js";

// The KPI tiles: the funnel from leads to revenue with the activity that drives it.
const TILE_KPIS = [
  "leads", "calls", "connect_rate", "meetings_set", "meeting_rate", "opportunities", "won_deals", "revenue",
];
const DEFAULT_CHART_KPI = "calls";

const state = {
  me: null,
  scopes: null,
  kpis: new Map(),
  period: null,
  scope: { type: "TENANT" },
  kpi: DEFAULT_CHART_KPI,
  data: null,
  selectedNodeId: null,
  reports: null,
  loading: 0,
};

const $ = (id) => document.getElementById(id);

/** A DOM element: h("td", {class: "num", dataset: {value: "1"}}, "text", child...). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function currency() {
  return state.me && state.me.tenant ? state.me.tenant.currency : "JPY";
}

function fmt(value, unit) {
  return formatValue(value, unit, currency());
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// --- Pickers ----------------------------------------------------------------------------

function fillWorkspaces() {
  const { workspaces, tenant } = state.me;
  const form = $("switch-form");
  form.hidden = workspaces.length < 2;
  const select = $("workspace");
  select.replaceChildren(
    ...workspaces.map((ws) =>
      h("option", { value: ws.slug, selected: tenant && ws.slug === tenant.slug }, ws.name)),
  );
}

function fillScopes() {
  const select = $("scope");
  const current = scopeValue(state.scope);
  const { teams, reps } = state.scopes;
  select.replaceChildren(
    h("option", { value: "TENANT" }, t("scope.tenant")),
    h("optgroup", { label: t("scope.teams") },
      teams.map((team) => h("option", { value: `TEAM|${team.id}` }, team.name))),
    h("optgroup", { label: t("scope.reps") },
      reps.map((rep) => h("option", { value: `REP|${rep.id}` }, rep.displayName || rep.username))),
  );
  select.value = current;
}

function fillKpis() {
  const select = $("chart-kpi");
  select.replaceChildren(
    ...state.scopes.catalogue.map((kpi) => h("option", { value: kpi.key }, kpiName(kpi))),
  );
  select.value = state.kpi;
}

function scopeValue(scope) {
  return scope.type === "TENANT" ? "TENANT" : `${scope.type}|${scope.id}`;
}

function showPeriod() {
  const { period } = state;
  $("period-label").textContent = period.label;
  const last = new Date(period.end.getTime() - 86400000);
  $("period-range").textContent = `${period.start.toISOString().slice(0, 10)} – ${last.toISOString().slice(0, 10)}`;
  $("grain").value = period.grain;
}

// --- Widgets ----------------------------------------------------------------------------

function renderTiles() {
  const list = $("tiles");
  list.replaceChildren(
    ...state.data.tiles.map(({ kpi, value, previous, target }) => {
      const attainment = target !== null && num(target) !== 0 && value.value !== null
        ? num(value.value) / num(target) : null;
      return h("li", { class: "tile", dataset: { kpi: kpi.key } },
        h("h3", {}, kpiName(kpi)),
        h("p", { class: "tile-value", dataset: { value: value.value ?? "" } }, fmt(value.value, kpi.unit),
          value.pending ? h("span", { class: "badge" }, t("tiles.pending")) : null),
        h("dl", {},
          h("dt", {}, t("tiles.target")),
          h("dd", { class: "tile-target", dataset: { value: target ?? "" } }, fmt(target, kpi.unit)),
          h("dt", {}, t("tiles.attainment")),
          h("dd", { class: "tile-attainment", dataset: { value: attainment ?? "" } }, formatRatio(attainment)),
          h("dt", {}, t("tiles.previous")),
          h("dd", { class: "tile-previous", dataset: { value: previous ? previous.value ?? "" : "" } },
            fmt(previous ? previous.value : null, kpi.unit)),
          h("dt", {}, t("tiles.change")),
          h("dd", { class: "tile-change" }, formatChange(value.value, previous ? previous.value : null)),
        ));
    }),
  );
}

function renderTree() {
  const { tree } = state.data;
  $("tree-summary").textContent = t("tree.summary", {
    workingDays: tree.workingDays,
    elapsed: tree.elapsedWorkingDays ?? tree.workingDays,
    headcount: tree.headcount,
    projected: fmt(tree.projectedKgi, tree.nodes[0] && tree.nodes[0].kpi ? tree.nodes[0].kpi.unit : "count"),
  });
  const children = new Map();
  for (const node of tree.nodes) {
    const key = node.parentId ?? "root";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(node);
  }
  const branch = (parentKey) => {
    const nodes = children.get(parentKey) || [];
    if (!nodes.length) return null;
    return h("ul", { class: parentKey === "root" ? "tree" : "" },
      nodes.map((node) => {
        const bottleneck = node.id === tree.bottleneckNodeId;
        const unit = node.kpi ? node.kpi.unit : "count";
        return h("li", {},
          h("button", {
            type: "button",
            class: `tree-node${bottleneck ? " bottleneck" : ""}${node.id === state.selectedNodeId ? " selected" : ""}`,
            dataset: { nodeId: node.id, kind: node.kind },
            "aria-pressed": node.id === state.selectedNodeId ? "true" : "false",
            onclick: () => selectNode(node.id),
          },
          h("span", { class: "node-label" }, node.kpi ? kpiName(node.kpi) : node.label),
          node.actual ? h("span", { class: "node-actual" }, fmt(node.actual.value, unit)) : null,
          h("span", { class: "node-attainment" }, formatRatio(node.attainment)),
          bottleneck ? h("span", { class: "badge warn" }, t("tree.bottleneck")) : null),
          branch(node.id));
      }));
  };
  $("tree").replaceChildren(branch("root") || h("p", { class: "muted" }, t("empty")));
  renderTreeDetail();
}

function selectNode(id) {
  state.selectedNodeId = state.selectedNodeId === id ? null : id;
  renderTree();
}

/** Required per rep per working day: the plan's volume spread over reps and days. */
function perRepDay(node, tree) {
  if (!node.kpi || node.kpi.unit !== "count" || node.required === null) return null;
  if (!tree.headcount || !tree.workingDays) return null;
  return num(node.required) / tree.headcount / tree.workingDays;
}

function renderTreeDetail() {
  const detail = $("tree-detail");
  const { tree } = state.data;
  const node = tree.nodes.find((n) => n.id === state.selectedNodeId);
  if (!node) {
    detail.hidden = true;
    detail.replaceChildren();
    return;
  }
  const unit = node.kpi ? node.kpi.unit : "count";
  const daily = perRepDay(node, tree);
  const row = (key, cls, raw, text) => [
    h("dt", {}, t(key)), h("dd", { class: cls, dataset: { value: raw ?? "" } }, text),
  ];
  detail.hidden = false;
  detail.replaceChildren(
    h("h3", {}, node.kpi ? kpiName(node.kpi) : node.label,
      node.id === tree.bottleneckNodeId ? h("span", { class: "badge warn" }, t("tree.bottleneck")) : null),
    h("dl", {},
      row("tree.actual", "detail-actual", node.actual ? node.actual.value : null, fmt(node.actual ? node.actual.value : null, unit)),
      row("tree.target", "detail-target", node.target, fmt(node.target, unit)),
      row("tree.required", "detail-required", node.required,
        node.requiredRounded !== null ? fmt(node.requiredRounded, unit) : fmt(node.required, unit)),
      row("tree.attainment", "detail-attainment", node.attainment, formatRatio(node.attainment)),
      row("tree.gap", "detail-gap", node.gap, fmt(node.gap, unit)),
      row("tree.basis", "detail-basis", node.basis, node.basis ? t(`basis.${node.basis}`) : "—"),
      row("tree.previous", "detail-previous", node.comparisonActual ? node.comparisonActual.value : null,
        fmt(node.comparisonActual ? node.comparisonActual.value : null, unit)),
      row("tree.perRepDay", "detail-per-rep-day", daily,
        daily === null ? "—" : daily.toLocaleString(language() === "ja" ? "ja-JP" : "en-US", { maximumFractionDigits: 1 })),
    ),
    h("button", { type: "button", onclick: () => selectNode(node.id) }, t("tree.close")),
  );
}

function renderSeries() {
  const { kpi, current, previous } = state.data.series;
  const cumulative = kpi.unit === "count" || kpi.unit === "money";
  // Days after the tenant's today have no data yet: the line stops at today.
  const today = isoDate(todayIn(state.me.tenant.timezone));
  const values = (points) => {
    let sum = 0;
    return points.map((p) => {
      if (p.period.start > today) return null;
      const v = num(p.value.value);
      if (!cumulative) return v;
      sum += v ?? 0;
      return sum;
    });
  };
  const total = (points) => points.reduce((acc, p) => acc + (num(p.value.value) ?? 0), 0);
  const title = `${kpiName(kpi)} · ${t(cumulative ? "series.cumulative" : "series.daily")}`;
  const chart = lineChart({
    title,
    format: (v) => fmt(v, kpi.unit),
    lines: [
      { className: "previous", values: values(previous) },
      { className: "current", values: values(current) },
    ],
  });
  const legend = h("ul", { class: "legend" },
    h("li", { class: "current" }, t("series.current"),
      cumulative ? [": ", h("strong", { class: "series-total-current", dataset: { value: total(current) } }, fmt(total(current), kpi.unit))] : null),
    h("li", { class: "previous" }, t("series.previous"),
      cumulative ? [": ", h("strong", { class: "series-total-previous", dataset: { value: total(previous) } }, fmt(total(previous), kpi.unit))] : null));
  $("series").replaceChildren(h("p", { class: "muted" }, title), chart, legend);
}

function renderFunnel() {
  const group = state.data.funnel.groups[0];
  const previousGroup = state.data.funnel.comparison && state.data.funnel.comparison.groups[0];
  if (!group || !group.steps.length) {
    $("funnel").replaceChildren(h("p", { class: "muted" }, t("empty")));
    return;
  }
  const first = Math.max(1, group.steps[0].count);
  const previousCount = (stage) => {
    const step = previousGroup && previousGroup.steps.find((s) => s.stage === stage);
    return step ? step.count : null;
  };
  $("funnel").replaceChildren(h("table", { class: "funnel" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, t("funnel.stage")), h("th", { scope: "col" }, t("funnel.count")),
      h("th", { scope: "col" }, t("funnel.conversion")), h("th", { scope: "col" }, t("funnel.dropOff")),
      h("th", { scope: "col" }, t("funnel.previous")))),
    h("tbody", {}, group.steps.map((step) => h("tr", { dataset: { stage: step.stage } },
      h("th", { scope: "row" }, t(`stage.${step.stage}`),
        h("span", { class: "bar", style: `width:${((step.count / first) * 100).toFixed(1)}%`, "aria-hidden": "true" })),
      h("td", { class: "num funnel-count", dataset: { value: step.count } }, fmt(step.count, "count")),
      h("td", { class: "num funnel-conversion", dataset: { value: step.stepConversion ?? "" } }, fmt(step.stepConversion, "percent")),
      h("td", { class: "num funnel-drop", dataset: { value: step.dropOff ?? "" } }, dropOffText(step.dropOff)),
      h("td", { class: "num funnel-previous" }, fmt(previousCount(step.stage), "count")))))));
}

/** Drop-off (previous step minus this one) as people read it: −12 lost, +1 more than before. */
function dropOffText(dropOff) {
  if (dropOff === null) return "—";
  if (dropOff === 0) return fmt(0, "count");
  return `${dropOff > 0 ? "−" : "+"}${fmt(Math.abs(dropOff), "count")}`;
}

function renderLeaderboard() {
  const board = state.data.leaderboard;
  if (!board.entries.length) {
    $("leaderboard").replaceChildren(h("p", { class: "muted" }, t("empty")));
    return;
  }
  const unit = board.kpi.unit;
  $("leaderboard").replaceChildren(
    h("p", { class: "muted" }, kpiName(board.kpi)),
    h("table", { class: "leaderboard" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, t("leaderboard.rank")), h("th", { scope: "col" }, t("leaderboard.name")),
        h("th", { scope: "col" }, t("leaderboard.value")), h("th", { scope: "col" }, t("leaderboard.previous")))),
      h("tbody", {}, board.entries.map((entry) => h("tr", {},
        h("td", { class: "num" }, entry.rank ?? "—"),
        h("th", { scope: "row" }, entry.label),
        h("td", { class: "num leader-value", dataset: { value: entry.value.value ?? "" } }, fmt(entry.value.value, unit)),
        h("td", { class: "num" }, fmt(entry.comparison ? entry.comparison.value : null, unit)))))));
}

function renderAlerts() {
  const { items } = state.data.alerts;
  const list = $("alerts");
  if (!items.length) {
    list.replaceChildren(h("li", { class: "muted" }, t("alerts.none")));
    return;
  }
  list.replaceChildren(...items.map((alert) => {
    const kpi = alert.rule.kpi ? state.kpis.get(alert.rule.kpi) : null;
    const about = [kpi ? kpiName(kpi) : null, scopeName(alert.scope), alert.period].filter(Boolean);
    return h("li", { class: "alert", dataset: { alertId: alert.id } },
      h("h3", {}, alert.rule.name, " ", h("span", { class: "muted" }, about.join(" · "))),
      paceSummary(alert.explanation, kpi),
      h("p", {}, h("strong", {}, `${t("alerts.action")}: `), alert.explanation.improvementAction),
      alert.acknowledgedAt
        ? h("p", { class: "acknowledged" }, `✓ ${t("alerts.acknowledged")}`)
        : h("button", { type: "button", class: "ack", onclick: (event) => acknowledge(alert, event.currentTarget) }, t("alerts.acknowledge")));
  }));
}

/** What each remaining working day needs, for pace alerts, written in the page's language
 *  from the explanation's numbers (the API stores no sentence). */
function paceSummary(explanation, kpi) {
  const needed = num(explanation.neededPerRemainingDay);
  if (needed === null || !kpi) return null;
  const amount = kpi.unit === "money"
    ? fmt(needed, "money")
    : needed.toLocaleString(language() === "ja" ? "ja-JP" : "en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const name = language() === "ja" ? kpi.nameJa : kpi.nameEn.toLowerCase();
  return h("p", { class: "alert-summary", dataset: { needed: explanation.neededPerRemainingDay } },
    t("alerts.needed", { needed: amount, kpi: name, remaining: explanation.remainingWorkingDays ?? "—" }));
}

/** A scope's name for people: the team's or rep's name, the source, or the workspace. */
function scopeName(scope) {
  if (scope.type === "TEAM") {
    const team = state.scopes.teams.find((item) => item.id === scope.id);
    return team ? team.name : null;
  }
  if (scope.type === "REP") {
    const rep = state.scopes.reps.find((item) => item.id === scope.id);
    return rep ? rep.displayName || rep.username : null;
  }
  if (scope.type === "SOURCE") return scope.source;
  return t("scope.tenant");
}

async function acknowledge(alert, button) {
  button.disabled = true;
  try {
    const result = await acknowledgeAlert(alert.id);
    alert.acknowledgedAt = result.acknowledgedAt;
    renderAlerts();
  } catch (error) {
    button.disabled = false;
    setStatus(t("status.error", { message: error.message }), true);
  }
}

function renderReports() {
  const panel = $("reports-panel");
  panel.hidden = state.reports === null;
  panel.dataset.detected = state.reports === null ? "absent" : "present";
  if (state.reports === null) return;
  $("reports").replaceChildren(state.reports.length
    ? h("ul", {}, state.reports.map((report) => h("li", {}, report.title || report.name || report.period || report.__typename)))
    : h("p", { class: "muted" }, t("reports.none")));
}

function renderAll() {
  if (!state.data) return;
  renderTiles();
  renderTree();
  renderSeries();
  renderFunnel();
  renderLeaderboard();
  renderAlerts();
}

// --- Loading ----------------------------------------------------------------------------

async function refresh() {
  const ticket = ++state.loading;
  showPeriod();
  setStatus(t("status.loading"));
  $("console").setAttribute("aria-busy", "true");
  const fy = state.me.tenant.fiscalYearStartMonth;
  try {
    const data = await loadDashboard({
      period: state.period,
      previous: shiftPeriod(state.period, -1, fy),
      scope: state.scope,
      tiles: TILE_KPIS,
      kpi: state.kpi,
    });
    if (ticket !== state.loading) return; // a later request superseded this one
    state.data = data;
    if (!data.tree.nodes.some((n) => n.id === state.selectedNodeId)) state.selectedNodeId = null;
    renderAll();
    setStatus(t("status.loaded", { time: new Date().toLocaleTimeString(language() === "ja" ? "ja-JP" : "en-US") }));
    $("console").dataset.loadedPeriod = state.period.label;
    $("console").dataset.loadedScope = scopeValue(state.scope);
    $("console").dataset.loadedKpi = state.kpi;
  } catch (error) {
    if (ticket === state.loading) setStatus(t("status.error", { message: error.message }), true);
  } finally {
    if (ticket === state.loading) $("console").setAttribute("aria-busy", "false");
  }
}

function changeLanguage(lang) {
  setLanguage(lang, { remember: true });
  if (state.scopes) {
    fillScopes();
    fillKpis();
  }
  renderAll();
  renderReports();
}

async function start() {
  setLanguage(initialLanguage(null));
  try {
    state.me = await loadContext();
  } catch (error) {
    setStatus(t("status.error", { message: error.message }), true);
    return;
  }
  const { tenant } = state.me;
  setLanguage(initialLanguage(tenant ? tenant.language : null));
  $("lang").value = language();
  fillWorkspaces();
  if (!tenant) {
    $("choose-workspace").hidden = false;
    return;
  }
  $("workspace-name").textContent = `· ${tenant.name}`;
  state.scopes = await loadScopes();
  for (const kpi of state.scopes.catalogue) state.kpis.set(kpi.key, kpi);
  fillScopes();
  fillKpis();
  state.period = periodContaining("MONTH", todayIn(tenant.timezone), tenant.fiscalYearStartMonth);
  $("dashboard").hidden = false;
  await refresh();
  state.reports = await loadReports().catch(() => null);
  renderReports();
}

$("lang").addEventListener("change", (event) => changeLanguage(event.target.value));
$("grain").addEventListener("change", (event) => {
  const { fiscalYearStartMonth, timezone } = state.me.tenant;
  // The new grain's period around today when today is in the shown period, else its start.
  const today = todayIn(timezone);
  const inside = state.period.start <= today && today < state.period.end;
  state.period = periodContaining(event.target.value, inside ? today : state.period.start, fiscalYearStartMonth);
  refresh();
});
$("period-prev").addEventListener("click", () => {
  state.period = shiftPeriod(state.period, -1, state.me.tenant.fiscalYearStartMonth);
  refresh();
});
$("period-next").addEventListener("click", () => {
  state.period = shiftPeriod(state.period, 1, state.me.tenant.fiscalYearStartMonth);
  refresh();
});
$("scope").addEventListener("change", (event) => {
  const [type, id] = event.target.value.split("|");
  state.scope = type === "TENANT" ? { type: "TENANT" } : { type, id };
  refresh();
});
$("chart-kpi").addEventListener("change", (event) => {
  state.kpi = event.target.value;
  refresh();
});

start();

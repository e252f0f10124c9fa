// The dashboard page: pickers, the member's stored dashboard (its widgets in order) and the
// language switch. Data comes only from api.js (the public GraphQL API); this module renders it.
import {
  acknowledgeAlert, loadContext, loadDashboard, loadDashboards, loadReport, loadReports, loadScopes,
} from "./api.js";
import { lineChart } from "./charts.js";
import { formatChange, formatRatio, formatValue, num } from "./format.js";
import { initialLanguage, kpiName, language, setLanguage, t } from "./i18n.js";
import { periodContaining, shiftPeriod, todayIn } from "./periods.js";

const DASHBOARD_KEY = "console.dashboard";

const state = {
  me: null,
  scopes: null,
  kpis: new Map(),
  period: null,
  scope: { type: "TENANT" },
  dashboards: [],
  dashboardId: "", // "": the member's role default
  data: null, // the DashboardView
  sections: [], // {widget, root}: each widget's card, in order
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

function fillDashboards() {
  const select = $("dashboard-picker");
  select.replaceChildren(
    h("option", { value: "" }, t("dashboard.default")),
    ...state.dashboards.map((d) => h("option", { value: d.id }, d.name)),
  );
  select.value = state.dashboardId;
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
// Each widget of the dashboard gets a card; the first widget of each kind keeps the ids the
// page always had (#tiles, #tree, #tree-detail, #series, #funnel, #leaderboard, #alerts), the
// others are found by class inside their card.

const BODY = {
  KPI_TILES: { id: "tiles", tag: "ul", cls: "tiles", title: "tiles.title" },
  KPI_TREE: { id: "tree", tag: "div", cls: "tree-body", title: "tree.title" },
  SERIES: { id: "series", tag: "div", cls: "series-body", title: "series.title" },
  FUNNEL: { id: "funnel", tag: "div", cls: "funnel-body", title: "funnel.title" },
  LEADERBOARD: { id: "leaderboard", tag: "div", cls: "leaderboard-body", title: "leaderboard.title" },
  ALERTS: { id: "alerts", tag: "ul", cls: "alerts", title: "alerts.title" },
};

function buildSections() {
  const seen = new Set();
  state.sections = state.data.widgets.filter((widget) => BODY[widget.kind]).map((widget) => {
    const spec = BODY[widget.kind];
    const first = !seen.has(widget.kind);
    seen.add(widget.kind);
    const titleId = first ? `${spec.id}-title` : `widget-${widget.id}-title`;
    const body = h(spec.tag, { id: first ? spec.id : null, class: `widget-body ${spec.cls}` });
    const root = h("section", {
      class: `card widget widget-${widget.kind}`,
      "aria-labelledby": titleId,
      dataset: { widgetId: widget.id, widgetKind: widget.kind },
    },
    h("h2", { id: titleId, class: "widget-title" }),
    widget.kind === "KPI_TREE" ? h("p", { id: first ? "tree-summary" : null, class: "tree-summary muted" }) : null,
    body,
    widget.kind === "KPI_TREE"
      ? h("div", { id: first ? "tree-detail" : null, class: "detail tree-detail", hidden: true, "aria-live": "polite" })
      : null,
    h("p", { class: "missing" }));
    return { widget, root, body };
  });
  $("widgets").replaceChildren(...(state.sections.length
    ? state.sections.map((section) => section.root)
    : [h("p", { class: "muted card" }, t("dashboard.empty"))]));
}

function renderSection(section) {
  const { widget, root, body } = section;
  root.querySelector(".widget-title").textContent = widget.title || t(BODY[widget.kind].title);
  root.querySelector(".missing").textContent = widget.missingKpis.length
    ? t("dashboard.missing", { kpis: widget.missingKpis.join(", ") }) : "";
  const render = {
    KPI_TILES: renderTiles, KPI_TREE: renderTree, SERIES: renderSeries,
    FUNNEL: renderFunnel, LEADERBOARD: renderLeaderboard, ALERTS: renderAlerts,
  }[widget.kind];
  render(widget, body, root);
}

function renderKind(kind) {
  for (const section of state.sections) if (section.widget.kind === kind) renderSection(section);
}

function renderTiles(widget, list) {
  list.replaceChildren(
    ...widget.tiles.map(({ kpi, value, comparison: previous, target }) => {
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

function renderTree(widget, body, root) {
  const { tree } = widget;
  root.querySelector(".tree-summary").textContent = t("tree.summary", {
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
  body.replaceChildren(branch("root") || h("p", { class: "muted" }, t("empty")));
  renderTreeDetail(tree, root.querySelector(".tree-detail"));
}

function selectNode(id) {
  state.selectedNodeId = state.selectedNodeId === id ? null : id;
  renderKind("KPI_TREE");
}

/** Required per rep per working day: the plan's volume spread over reps and days. */
function perRepDay(node, tree) {
  if (!node.kpi || node.kpi.unit !== "count" || node.required === null) return null;
  if (!tree.headcount || !tree.workingDays) return null;
  return num(node.required) / tree.headcount / tree.workingDays;
}

function renderTreeDetail(tree, detail) {
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

/** The widget's KPIs over its periods; one KPI is drawn against the previous periods too. */
function renderSeries(widget, body) {
  const all = widget.series || [];
  if (!all.length) {
    body.replaceChildren(h("p", { class: "muted" }, t("empty")));
    return;
  }
  const unit = all[0].kpi.unit;
  const values = (points, pick) => points.map((p) => num(pick(p)));
  const lines = all.length === 1
    ? [
      { className: "previous", values: values(all[0].points, (p) => (p.comparison ? p.comparison.value : null)) },
      { className: "current", values: values(all[0].points, (p) => p.value.value) },
    ]
    : all.map((series, index) => ({ className: index ? `line-${index}` : "current", values: values(series.points, (p) => p.value.value) }));
  const title = `${all.map((series) => kpiName(series.kpi)).join(" · ")} · ${t(`grain.${all[0].grain}`)}`;
  const points = all[0].points;
  const range = points.length ? `${points[0].period.label} – ${points[points.length - 1].period.label}` : "";
  const last = (series) => series.points.length ? series.points[series.points.length - 1].value.value : null;
  body.replaceChildren(
    h("p", { class: "muted" }, title, " ", h("span", {}, range)),
    lineChart({ title, format: (v) => fmt(v, unit), lines }),
    h("ul", { class: "legend" },
      all.map((series, index) => h("li", { class: index ? `line-${index}` : "current", dataset: { kpi: series.kpi.key } },
        `${kpiName(series.kpi)}: `, h("strong", { class: "series-last", dataset: { value: last(series) ?? "" } }, fmt(last(series), series.kpi.unit)))),
      all.length === 1 ? h("li", { class: "previous" }, t("series.previous")) : null));
}

function renderFunnel(widget, body) {
  const { funnel } = widget;
  const group = funnel.groups[0];
  const previousGroup = funnel.comparison && funnel.comparison.groups[0];
  if (!group || !group.steps.length) {
    body.replaceChildren(h("p", { class: "muted" }, t("empty")));
    return;
  }
  const first = Math.max(1, group.steps[0].count);
  const previousCount = (stage) => {
    const step = previousGroup && previousGroup.steps.find((s) => s.stage === stage);
    return step ? step.count : null;
  };
  body.replaceChildren(h("table", { class: "funnel" },
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

function renderLeaderboard(widget, body) {
  const board = widget.leaderboard;
  if (!board.entries.length) {
    body.replaceChildren(h("p", { class: "muted" }, t("empty")));
    return;
  }
  const unit = board.kpi.unit;
  body.replaceChildren(
    h("p", { class: "muted" }, kpiName(board.kpi), " · ", t(`leaderboard.by.${board.by}`)),
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

function renderAlerts(widget, list) {
  const { items } = widget.alerts;
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
        : h("button", { type: "button", class: "ack", onclick: (event) => acknowledge(alert.id, event.currentTarget) }, t("alerts.acknowledge")));
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

async function acknowledge(alertId, button) {
  button.disabled = true;
  try {
    const result = await acknowledgeAlert(alertId);
    // The same alert may be listed by several alert widgets.
    for (const { widget } of state.sections) {
      for (const alert of widget.alerts ? widget.alerts.items : []) {
        if (alert.id === alertId) alert.acknowledgedAt = result.acknowledgedAt;
      }
    }
    renderKind("ALERTS");
  } catch (error) {
    button.disabled = false;
    setStatus(t("status.error", { message: error.message }), true);
  }
}

// --- Reports ----------------------------------------------------------------------------

function renderReports() {
  const panel = $("reports-panel");
  panel.hidden = state.reports === null;
  panel.dataset.detected = state.reports === null ? "absent" : "present";
  if (state.reports === null) return;
  $("reports").replaceChildren(state.reports.length
    ? h("ul", { class: "report-list" }, state.reports.map((report) => h("li", {},
      h("a", { href: `#report=${encodeURIComponent(report.id)}`, dataset: { reportId: report.id } },
        `${t(`report.${report.kind}`)} ${report.period.label}`))))
    : h("p", { class: "muted" }, t("reports.none")));
}

/** The report named in the address (#report=<id>, the link report e-mails carry), shown in
 *  a sandboxed frame: its HTML is self-contained and may run no script (same origin only so
 *  that it paints and prints like the page). */
async function showReportFromHash() {
  const match = /^#report=(.+)$/.exec(window.location.hash);
  const view = $("report-view");
  if (!match) {
    view.hidden = true;
    $("report-frame").srcdoc = "";
    return;
  }
  try {
    const report = await loadReport(decodeURIComponent(match[1]));
    $("report-view-title").textContent = `${t(`report.${report.kind}`)} ${report.period.label}`;
    $("report-frame").srcdoc = report.html;
    view.hidden = false;
    view.dataset.reportId = report.id;
    view.scrollIntoView();
  } catch (error) {
    setStatus(t("status.error", { message: error.message }), true);
  }
}

// --- Loading ----------------------------------------------------------------------------

function renderAll() {
  if (!state.data) return;
  $("dashboard-name").textContent = state.data.dashboard.name;
  for (const section of state.sections) renderSection(section);
}

async function refresh() {
  const ticket = ++state.loading;
  showPeriod();
  setStatus(t("status.loading"));
  $("console").setAttribute("aria-busy", "true");
  try {
    const data = await loadDashboard({ id: state.dashboardId, period: state.period, scope: state.scope });
    if (ticket !== state.loading) return; // a later request superseded this one
    state.data = data;
    const trees = data.widgets.filter((w) => w.tree).flatMap((w) => w.tree.nodes);
    if (!trees.some((n) => n.id === state.selectedNodeId)) state.selectedNodeId = null;
    buildSections();
    renderAll();
    setStatus(t("status.loaded", { time: new Date().toLocaleTimeString(language() === "ja" ? "ja-JP" : "en-US") }));
    $("console").dataset.loadedPeriod = state.period.label;
    $("console").dataset.loadedScope = scopeValue(state.scope);
    $("console").dataset.loadedDashboard = data.dashboard.id;
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
    fillDashboards();
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
  // NOTE: one request at a time: the page never needs two at once, and a development server
  // on SQLite shares one connection between its threads.
  state.scopes = await loadScopes();
  state.dashboards = await loadDashboards();
  for (const kpi of state.scopes.catalogue) state.kpis.set(kpi.key, kpi);
  // The dashboard picked last time in this workspace, if it is still there.
  const remembered = window.localStorage.getItem(`${DASHBOARD_KEY}.${tenant.slug}`) || "";
  state.dashboardId = state.dashboards.some((d) => d.id === remembered) ? remembered : "";
  fillScopes();
  fillDashboards();
  state.period = periodContaining("MONTH", todayIn(tenant.timezone), tenant.fiscalYearStartMonth);
  $("dashboard").hidden = false;
  await refresh();
  state.reports = await loadReports().catch(() => null);
  renderReports();
  await showReportFromHash();
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
$("dashboard-picker").addEventListener("change", (event) => {
  state.dashboardId = event.target.value;
  window.localStorage.setItem(`${DASHBOARD_KEY}.${state.me.tenant.slug}`, state.dashboardId);
  state.selectedNodeId = null;
  refresh();
});
window.addEventListener("hashchange", () => { showReportFromHash(); });
$("report-close").addEventListener("click", () => {
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  showReportFromHash();
});

start();

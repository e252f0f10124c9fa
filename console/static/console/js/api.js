// The console's only door to data: the public GraphQL API at /graphql/, with the member's
// session (CSRF token in X-CSRFToken). The page asks for a whole dashboard in one request
// (loadDashboard); when the `dashboard(id, period, scope, comparison)` query exists, only
// DASHBOARD_QUERY and toDashboard below change: the rest of the console reads the same shape.

const ENDPOINT = "/graphql/";

export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** POST one GraphQL operation; resolves to `data`, rejects with an ApiError. */
export async function gql(query, variables = {}, { allowErrors = false } = {}) {
  const response = await fetch(ENDPOINT, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken(),
    },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP ${response.status}`, "HTTP");
  }
  if (allowErrors) return body;
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    throw new ApiError(first.message, first.extensions && first.extensions.code);
  }
  return body.data;
}

const KPI_FIELDS = "key nameJa nameEn unit direction";
const VALUE_FIELDS = "value numerator denominator pending";

const CONTEXT_QUERY = `query ConsoleContext {
  me {
    username role
    tenant { slug name language timezone currency fiscalYearStartMonth }
    workspaces { slug name role }
  }
}`;

const SCOPES_QUERY = `query ConsoleScopes {
  kpiCatalogue { ${KPI_FIELDS} }
  teams(first: 100) { edges { node { id name } } }
  members(first: 100) { edges { node { id displayName username role isActive team { id } } } }
}`;

/** Who is signed in, in which workspace, and the workspaces they may switch to. */
export async function loadContext() {
  return (await gql(CONTEXT_QUERY)).me;
}

/** What the pickers offer: the KPI catalogue, the teams and the active reps. */
export async function loadScopes() {
  const data = await gql(SCOPES_QUERY);
  return {
    catalogue: data.kpiCatalogue,
    teams: data.teams.edges.map((edge) => edge.node),
    reps: data.members.edges
      .map((edge) => edge.node)
      .filter((member) => member.isActive && member.role === "REP"),
  };
}

export const DASHBOARD_QUERY = `query ConsoleDashboard(
  $period: String!, $scope: ScopeInput, $tiles: [String!], $kpi: String!,
  $start: Date!, $end: Date!, $previousStart: Date!, $previousEnd: Date!
) {
  kpiValues(period: $period, kpis: $tiles, scope: $scope, comparison: PREVIOUS_PERIOD) {
    period { label start end }
    value { kpi { ${KPI_FIELDS} } ${VALUE_FIELDS} }
    comparison { period { label } ${VALUE_FIELDS} }
  }
  kpiTargets(period: $period, scope: $scope, kpis: $tiles) { kpi { key } value }
  kpiTree(period: $period, scope: $scope, comparison: PREVIOUS_PERIOD) {
    period { label } projectedKgi bottleneckNodeId headcount workingDays elapsedWorkingDays
    nodes {
      id parentId kind depth label required requiredRounded basis target attainment gap
      kpi { ${KPI_FIELDS} }
      actual { ${VALUE_FIELDS} }
      comparisonActual { value }
    }
  }
  current: kpiSeries(kpi: $kpi, grain: DAY, start: $start, end: $end, scope: $scope) {
    kpi { ${KPI_FIELDS} }
    points { period { label start } value { ${VALUE_FIELDS} } }
  }
  previous: kpiSeries(kpi: $kpi, grain: DAY, start: $previousStart, end: $previousEnd, scope: $scope) {
    points { period { label start } value { ${VALUE_FIELDS} } }
  }
  funnel(period: $period, scope: $scope, comparison: PREVIOUS_PERIOD) {
    groups { steps { stage count stepConversion overallConversion dropOff } lost }
    comparison { groups { steps { stage count } } }
  }
  leaderboard(kpi: $kpi, period: $period, by: REP, first: 10, comparison: PREVIOUS_PERIOD) {
    kpi { ${KPI_FIELDS} }
    totalCount
    entries { rank label scope { type id } value { value } comparison { value } }
  }
  alerts(state: FIRING, first: 20) {
    totalCount
    items {
      id period acknowledgedAt
      rule { name kpi }
      scope { type id source }
      explanation { value threshold neededPerRemainingDay remainingWorkingDays improvementAction }
    }
  }
}`;

function lastDay(day) {
  return new Date(day.getTime() - 86400000).toISOString().slice(0, 10);
}

/** The variables of DASHBOARD_QUERY for a period ({label, start, end}), its predecessor,
 *  a scope ({type, id}), the tile KPIs and the KPI charted and ranked. */
export function dashboardVariables({ period, previous, scope, tiles, kpi }) {
  return {
    period: period.label,
    scope: scope.type === "TENANT" ? null : scope,
    tiles,
    kpi,
    start: period.start.toISOString().slice(0, 10),
    end: lastDay(period.end),
    previousStart: previous.start.toISOString().slice(0, 10),
    previousEnd: lastDay(previous.end),
  };
}

/** Every widget's data for one period and scope, in one request. */
export async function loadDashboard(args) {
  return toDashboard(await gql(DASHBOARD_QUERY, dashboardVariables(args)));
}

/** The API's answer in the shape the widgets read. */
function toDashboard(data) {
  const targets = new Map(data.kpiTargets.map((target) => [target.kpi.key, target.value]));
  return {
    tiles: data.kpiValues.map((point) => ({
      kpi: point.value.kpi,
      value: point.value,
      previous: point.comparison,
      target: targets.get(point.value.kpi.key) ?? null,
    })),
    tree: data.kpiTree,
    series: { kpi: data.current.kpi, current: data.current.points, previous: data.previous.points },
    funnel: data.funnel,
    leaderboard: data.leaderboard,
    alerts: data.alerts,
  };
}

const ACKNOWLEDGE = `mutation ConsoleAcknowledge($id: ID!) {
  acknowledgeAlert(id: $id) { alert { id acknowledgedAt } errors { code message } }
}`;

/** Acknowledge a firing alert; resolves to the alert, rejects with the payload's error. */
export async function acknowledgeAlert(id) {
  const payload = (await gql(ACKNOWLEDGE, { id })).acknowledgeAlert;
  if (payload.errors.length) throw new ApiError(payload.errors[0].message, payload.errors[0].code);
  return payload.alert;
}

/** The stored reports, or null when this server has no `reports` field yet (feature
 *  detection with the cheapest selection; introspection may be off in production). */
export async function loadReports() {
  const body = await gql("query ConsoleReports { reports { __typename } }", {}, { allowErrors: true });
  const errors = body.errors || [];
  if (errors.some((error) => /Cannot query field ['"]reports['"]/.test(error.message))) return null;
  const reports = body.data && body.data.reports;
  if (Array.isArray(reports)) return reports;
  if (reports && Array.isArray(reports.items)) return reports.items;
  if (reports && Array.isArray(reports.edges)) return reports.edges.map((edge) => edge.node);
  return [];
}

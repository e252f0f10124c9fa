// The console's only door to data: the public GraphQL API at /graphql/, with the member's
// session (CSRF token in X-CSRFToken). The page asks for a whole stored dashboard, every
// widget's data, in one request: `dashboard(id, period, scope, comparison)` (loadDashboard).

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

// One request at a time, in the order asked: the page can start one while another runs (a
// report link opened while the reports load, a period change during an acknowledgement),
// and a development or test server on SQLite shares one database connection between its
// threads, where two requests at once fail with "Unexpected error.". `data-api-busy` on
// <html> says whether a request is queued or running.
let queue = Promise.resolve();
let pending = 0;

function serialised(run) {
  pending += 1;
  document.documentElement.dataset.apiBusy = "true";
  const result = queue.then(run);
  const settle = () => {
    pending -= 1;
    if (pending === 0) document.documentElement.dataset.apiBusy = "false";
  };
  queue = result.then(settle, settle);
  return result;
}

/** POST one GraphQL operation; resolves to `data`, rejects with an ApiError. Requests are
 *  sent one after another (see `serialised`). */
export function gql(query, variables = {}, { allowErrors = false } = {}) {
  return serialised(() => send(query, variables, allowErrors));
}

async function send(query, variables, allowErrors) {
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

const DASHBOARDS_QUERY = `query ConsoleDashboards {
  dashboards(first: 100) { items { id name shared defaultForRole } }
}`;

/** The dashboards the member sees (shared ones and their own), by name. */
export async function loadDashboards() {
  return (await gql(DASHBOARDS_QUERY)).dashboards.items;
}

export const DASHBOARD_QUERY = `query ConsoleDashboard($id: ID, $period: String!, $scope: ScopeInput) {
  dashboard(id: $id, period: $period, scope: $scope, comparison: PREVIOUS_PERIOD) {
    dashboard { id name defaultForRole }
    period { label start end }
    comparisonPeriod { label }
    widgets {
      id kind title order missingKpis
      tiles { kpi { ${KPI_FIELDS} } value { ${VALUE_FIELDS} } comparison { ${VALUE_FIELDS} } target }
      series {
        kpi { ${KPI_FIELDS} } grain
        points { period { label start } value { ${VALUE_FIELDS} } comparison { value } }
      }
      tree {
        period { label } projectedKgi bottleneckNodeId headcount workingDays elapsedWorkingDays
        nodes {
          id parentId kind depth label required requiredRounded basis target attainment gap
          kpi { ${KPI_FIELDS} }
          actual { ${VALUE_FIELDS} }
          comparisonActual { value }
        }
      }
      funnel {
        groups { steps { stage count stepConversion overallConversion dropOff } lost }
        comparison { groups { steps { stage count } } }
      }
      leaderboard {
        kpi { ${KPI_FIELDS} } by totalCount
        entries { rank label scope { type id } value { value } comparison { value } }
      }
      alerts {
        totalCount
        items {
          id period acknowledgedAt
          rule { name kpi }
          scope { type id source }
          explanation { value threshold neededPerRemainingDay remainingWorkingDays improvementAction }
        }
      }
    }
  }
}`;

/** The variables of DASHBOARD_QUERY: a dashboard id (null: the member's role default), a
 *  period ({label}) and a scope ({type, id}). */
export function dashboardVariables({ id, period, scope }) {
  return { id: id || null, period: period.label, scope: scope.type === "TENANT" ? null : scope };
}

/** A whole dashboard (layout and every widget's data) for one period and scope, in one
 *  request. */
export async function loadDashboard(args) {
  return (await gql(DASHBOARD_QUERY, dashboardVariables(args))).dashboard;
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

const REPORTS_QUERY = `query ConsoleReports {
  reports(first: 20) { items { id kind period { label } scope { type id } generatedAt } }
}`;

/** The member's own reports (a rep their own, a manager their team's, others the
 *  workspace's), latest first; null when this server has no `reports` field (feature
 *  detection; introspection may be off in production). */
export async function loadReports() {
  const body = await gql(REPORTS_QUERY, {}, { allowErrors: true });
  const errors = body.errors || [];
  if (errors.some((error) => /Cannot query field ['"]reports['"]/.test(error.message))) return null;
  const reports = body.data && body.data.reports;
  return reports && Array.isArray(reports.items) ? reports.items : [];
}

const REPORT_QUERY = `query ConsoleReport($id: ID!) {
  report(id: $id) { id kind period { label } scope { type id } html }
}`;

/** One report with its self-contained HTML. */
export async function loadReport(id) {
  return (await gql(REPORT_QUERY, { id })).report;
}

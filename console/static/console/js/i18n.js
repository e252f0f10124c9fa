// The console's strings in Japanese and English; the tenant's language unless the member
// picked another (kept in localStorage). Elements carry data-i18n (text) or data-i18n-label
// (aria-label) keys; code calls t(key, values).

const STRINGS = {
  en: {
    "app.title": "KPI console",
    "nav.workspace": "Workspace",
    "nav.switch": "Switch",
    "nav.graphiql": "GraphiQL",
    "nav.logout": "Sign out",
    "lang.label": "Language",
    "login.title": "Sign in",
    "login.intro": "Inside-sales KPIs of your workspace.",
    "login.failed": "Wrong username or password.",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "workspace.choose": "Choose a workspace",
    "workspace.chooseHelp": "You are a member of several workspaces; pick one above.",
    "period.grain": "Period",
    "period.prev": "Previous period",
    "period.next": "Next period",
    "grain.WEEK": "Week",
    "grain.MONTH": "Month",
    "grain.QUARTER": "Quarter",
    "scope.label": "Scope",
    "scope.tenant": "Whole workspace",
    "scope.teams": "Teams",
    "scope.reps": "Reps",
    "dashboard.label": "Dashboard",
    "dashboard.default": "Default for my role",
    "dashboard.empty": "This dashboard has no widgets yet.",
    "dashboard.missing": "No longer in the KPI catalogue: {kpis}",
    "grain.DAY": "Day",
    "leaderboard.by.REP": "by rep",
    "leaderboard.by.TEAM": "by team",
    "leaderboard.by.SOURCE": "by source",
    "report.WEEKLY": "Weekly report",
    "report.MONTHLY": "Monthly report",
    "report.EXECUTIVE": "Executive report",
    "report.close": "Close",
    "status.loading": "Loading…",
    "status.loaded": "Updated {time}",
    "status.error": "Could not load: {message}",
    "tiles.title": "KPIs",
    "tiles.target": "Target",
    "tiles.attainment": "Attainment",
    "tiles.previous": "Previous period",
    "tiles.change": "Change",
    "tiles.pending": "refreshing",
    "tree.title": "KPI tree",
    "tree.summary": "{workingDays} working days, {elapsed} elapsed · {headcount} reps · projected KGI {projected}",
    "tree.bottleneck": "Bottleneck",
    "tree.actual": "Actual",
    "tree.target": "Target",
    "tree.required": "Required (plan)",
    "tree.attainment": "Attainment",
    "tree.gap": "Gap",
    "tree.basis": "Basis",
    "tree.previous": "Previous period",
    "tree.perRepDay": "Required per rep per working day",
    "tree.close": "Close",
    "basis.TARGET": "target",
    "basis.HISTORY": "own history",
    "basis.REFERENCE": "reference value",
    "basis.DERIVED": "worked back from the KGI",
    "series.title": "Series",
    "series.current": "This period",
    "series.previous": "Previous period",
    "series.cumulative": "Cumulative by day",
    "series.daily": "By day",
    "series.total": "Total",
    "series.day": "Day",
    "funnel.title": "Funnel",
    "funnel.stage": "Stage",
    "funnel.count": "Count",
    "funnel.conversion": "Step conversion",
    "funnel.dropOff": "Drop-off",
    "funnel.previous": "Previous period",
    "leaderboard.title": "Leaderboard",
    "leaderboard.rank": "Rank",
    "leaderboard.name": "Name",
    "leaderboard.value": "Value",
    "leaderboard.previous": "Previous period",
    "alerts.title": "Open alerts",
    "alerts.none": "No open alerts.",
    "alerts.acknowledge": "Acknowledge",
    "alerts.acknowledged": "Acknowledged",
    "alerts.action": "Improvement action",
    "alerts.needed": "{needed} more {kpi} a day ({remaining} working days left)",
    "reports.title": "Reports",
    "reports.none": "No reports yet.",
    "empty": "No data.",
    "stage.LEAD": "Leads",
    "stage.MQL": "MQL",
    "stage.SQL": "SQL",
    "stage.MEETING": "Meetings",
    "stage.OPPORTUNITY": "Opportunities",
    "stage.WON": "Won",
    "stage.LOST": "Lost",
    "stage.RECYCLED": "Recycled",
  },
  ja: {
    "app.title": "KPIコンソール",
    "nav.workspace": "ワークスペース",
    "nav.switch": "切り替え",
    "nav.graphiql": "GraphiQL",
    "nav.logout": "ログアウト",
    "lang.label": "言語",
    "login.title": "ログイン",
    "login.intro": "ワークスペースのインサイドセールスKPI",
    "login.failed": "ユーザー名またはパスワードが違います。",
    "login.username": "ユーザー名",
    "login.password": "パスワード",
    "login.submit": "ログイン",
    "workspace.choose": "ワークスペースを選択",
    "workspace.chooseHelp": "複数のワークスペースに所属しています。上で選んでください。",
    "period.grain": "期間",
    "period.prev": "前の期間",
    "period.next": "次の期間",
    "grain.WEEK": "週",
    "grain.MONTH": "月",
    "grain.QUARTER": "四半期",
    "scope.label": "範囲",
    "scope.tenant": "ワークスペース全体",
    "scope.teams": "チーム",
    "scope.reps": "担当者",
    "dashboard.label": "ダッシュボード",
    "dashboard.default": "自分のロールの標準",
    "dashboard.empty": "このダッシュボードにはウィジェットがありません。",
    "dashboard.missing": "KPIカタログにない指標: {kpis}",
    "grain.DAY": "日",
    "leaderboard.by.REP": "担当者別",
    "leaderboard.by.TEAM": "チーム別",
    "leaderboard.by.SOURCE": "チャネル別",
    "report.WEEKLY": "週次レポート",
    "report.MONTHLY": "月次レポート",
    "report.EXECUTIVE": "経営層向けレポート",
    "report.close": "閉じる",
    "status.loading": "読み込み中…",
    "status.loaded": "{time} 更新",
    "status.error": "読み込めませんでした: {message}",
    "tiles.title": "KPI",
    "tiles.target": "目標",
    "tiles.attainment": "達成率",
    "tiles.previous": "前期間",
    "tiles.change": "増減",
    "tiles.pending": "更新待ち",
    "tree.title": "KPIツリー",
    "tree.summary": "稼働日 {workingDays}日（経過 {elapsed}日）・担当者 {headcount}名・KGI着地見込み {projected}",
    "tree.bottleneck": "ボトルネック",
    "tree.actual": "実績",
    "tree.target": "目標",
    "tree.required": "必要数（計画）",
    "tree.attainment": "達成率",
    "tree.gap": "差",
    "tree.basis": "根拠",
    "tree.previous": "前期間",
    "tree.perRepDay": "1人1稼働日あたりの必要数",
    "tree.close": "閉じる",
    "basis.TARGET": "目標",
    "basis.HISTORY": "自社実績",
    "basis.REFERENCE": "参考値",
    "basis.DERIVED": "KGIからの逆算",
    "series.title": "推移",
    "series.current": "当期間",
    "series.previous": "前期間",
    "series.cumulative": "日別累計",
    "series.daily": "日別",
    "series.total": "合計",
    "series.day": "日",
    "funnel.title": "ファネル",
    "funnel.stage": "ステージ",
    "funnel.count": "件数",
    "funnel.conversion": "転換率",
    "funnel.dropOff": "歩留まり（離脱）",
    "funnel.previous": "前期間",
    "leaderboard.title": "ランキング",
    "leaderboard.rank": "順位",
    "leaderboard.name": "名前",
    "leaderboard.value": "値",
    "leaderboard.previous": "前期間",
    "alerts.title": "未対応のアラート",
    "alerts.none": "未対応のアラートはありません。",
    "alerts.acknowledge": "確認済みにする",
    "alerts.acknowledged": "確認済み",
    "alerts.action": "改善アクション",
    "alerts.needed": "{kpi}を1日あたりあと{needed}（残り{remaining}営業日）",
    "reports.title": "レポート",
    "reports.none": "レポートはまだありません。",
    "empty": "データがありません。",
    "stage.LEAD": "リード",
    "stage.MQL": "MQL",
    "stage.SQL": "SQL",
    "stage.MEETING": "商談",
    "stage.OPPORTUNITY": "案件",
    "stage.WON": "受注",
    "stage.LOST": "失注",
    "stage.RECYCLED": "リサイクル",
  },
};

const STORAGE_KEY = "console.lang";
let current = "ja";

export const LANGUAGES = Object.keys(STRINGS);

export function language() {
  return current;
}

/** The member's pick if any, else the tenant's language, else Japanese. */
export function initialLanguage(tenantLanguage) {
  const stored = window.localStorage.getItem(STORAGE_KEY);
  if (stored && STRINGS[stored]) return stored;
  return STRINGS[tenantLanguage] ? tenantLanguage : "ja";
}

export function setLanguage(lang, { remember = false } = {}) {
  current = STRINGS[lang] ? lang : "ja";
  if (remember) window.localStorage.setItem(STORAGE_KEY, current);
  document.documentElement.lang = current;
  translatePage();
}

export function t(key, values = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}

/** A KPI's name in the current language. */
export function kpiName(kpi) {
  return current === "ja" ? kpi.nameJa : kpi.nameEn;
}

"""A report's HTML: self-contained (inline CSS and SVG bar charts, no external asset), in
the tenant's language (ja or en). Every text from data is escaped."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.html import escape

LABELS: dict[str, dict[str, str]] = {
    "ja": {
        "weekly": "週次レポート",
        "monthly": "月次レポート",
        "executive": "経営層向けレポート",
        "scope": "対象",
        "tenant": "全社",
        "team": "チーム",
        "rep": "担当者",
        "source": "チャネル",
        "tree": "KPIツリーの達成状況",
        "node": "項目",
        "actual": "実績",
        "target": "目標",
        "required": "必要値",
        "attainment": "達成率",
        "previous": "前期間",
        "funnel": "ファネル",
        "stage": "ステージ",
        "count": "件数",
        "conversion": "転換率",
        "drop_off": "離脱",
        "alerts": "期間中のアラート",
        "no_alerts": "アラートはありません。",
        "rule": "ルール",
        "state": "状態",
        "action": "改善アクション",
        "movers": "前期間からの変化が大きいKPI",
        "no_movers": "十分なサンプルのある変化はありません。",
        "change": "変化率",
        "reps": "担当者別",
        "kgi": "KGI",
        "forecast": "着地見込み",
        "gaps": "主要なギャップ(上位3件)と要因",
        "drivers": "要因",
        "bottleneck": "ボトルネック",
        "generated": "作成日時",
    },
    "en": {
        "weekly": "Weekly report",
        "monthly": "Monthly report",
        "executive": "Executive report",
        "scope": "Scope",
        "tenant": "Whole workspace",
        "team": "Team",
        "rep": "Rep",
        "source": "Source",
        "tree": "KPI tree attainment",
        "node": "Item",
        "actual": "Actual",
        "target": "Target",
        "required": "Required",
        "attainment": "Attainment",
        "previous": "Previous",
        "funnel": "Funnel",
        "stage": "Stage",
        "count": "Count",
        "conversion": "Conversion",
        "drop_off": "Drop-off",
        "alerts": "Alerts of the period",
        "no_alerts": "No alerts.",
        "rule": "Rule",
        "state": "State",
        "action": "Improvement action",
        "movers": "Biggest movers against the previous period",
        "no_movers": "No change with a sufficient sample.",
        "change": "Change",
        "reps": "Per rep",
        "kgi": "KGI",
        "forecast": "Forecast",
        "gaps": "Top three gaps and their drivers",
        "drivers": "Drivers",
        "bottleneck": "Bottleneck",
        "generated": "Generated",
    },
}

_STYLE = (
    "body{font-family:sans-serif;color:#222;max-width:960px;margin:1em auto}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
    "text-align:right}th:first-child,td:first-child{text-align:left}.short{color:#b00}"
)


def _number(text: str | None) -> Decimal | None:
    try:
        return None if text is None else Decimal(text)
    except InvalidOperation:
        return None


def _shown(text: Any) -> str:
    return "-" if text is None else escape(str(text))


def svg_bars(items: list[tuple[str, Decimal | None]], *, percent: bool = False) -> str:
    """A horizontal bar chart as inline SVG: one bar per (label, value), scaled to the
    largest value (or to 100 % for attainments, with a line at 100 %)."""
    row, width, label_width = 22, 560, 200
    top = max([v for _, v in items if v is not None] + [Decimal(1)])
    if percent:
        top = max(top, Decimal(1))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{row * len(items) + 4}" role="img">'
    ]
    for index, (label, value) in enumerate(items):
        y = index * row + 2
        length = 0 if value is None or value < 0 else int((width - label_width - 60) * value / top)
        colour = "#c0392b" if percent and value is not None and value < 1 else "#2e86c1"
        shown = "-" if value is None else (f"{value * 100:.1f}%" if percent else f"{value:,}")
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{escape(label[:30])}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length}" height="16" fill="{colour}"/>'
            f'<text x="{label_width + length + 4}" y="{y + 14}" font-size="12">{shown}</text>'
        )
    if percent:
        x = label_width + int((width - label_width - 60) / top)
        parts.append(
            f'<line x1="{x}" y1="0" x2="{x}" y2="{row * len(items) + 4}" stroke="#555" '
            'stroke-dasharray="3,3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _label(node: dict[str, Any], language: str) -> str:
    # NOTE: a KPI node in English shows the KPI's English name; KSF labels are the tenant's.
    if language == "en" and node.get("name_en"):
        return node["name_en"]
    return node["label"]


def report_html(*, data: dict[str, Any], language: str, tenant_name: str, scope_label: str,
                generated_at: str) -> str:  # fmt: skip
    """The report's page (see the module docstring)."""
    t = LABELS.get(language, LABELS["en"])
    period = data["period"]["label"]
    title = f"{t[data['kind']]} {period}"
    out = [
        f'<!DOCTYPE html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(tenant_name)} — {escape(title)}</h1>",
        f"<p>{t['scope']}: {escape(scope_label)} · {t['generated']}: {escape(generated_at)}</p>",
    ]
    tree = data["tree"]
    if data.get("executive"):
        executive = data["executive"]
        kgi = executive.get("kgi") or {}
        out.append(f"<h2>{t['kgi']}: {escape(_label(kgi, language) if kgi else '-')}</h2>")
        out.append(
            _table(
                [t["actual"], t["target"], t["required"], t["forecast"], t["attainment"]],
                [
                    [
                        _shown(kgi.get("actual")),
                        _shown(kgi.get("target")),
                        _shown(kgi.get("required_rounded")),
                        _shown(executive.get("forecast")),
                        _shown(executive.get("forecast_attainment")),
                    ]
                ],
            )
        )
        out.append(f"<h2>{t['gaps']}</h2><ol>")
        for gap in executive["gaps"]:
            drivers = ", ".join(
                f"{escape(_label(d, language))} ({_shown(d['attainment'])})" for d in gap["drivers"]
            )
            out.append(
                f"<li><b>{escape(_label(gap, language))}</b>: {t['actual']} "
                f"{_shown(gap['actual'])} / {t['attainment']} {_shown(gap['attainment'])}"
                + (f"<br>{t['drivers']}: {drivers}" if drivers else "")
                + "</li>"
            )
        out.append("</ol>")
    out.append(f"<h2>{t['tree']}</h2>")
    kpi_nodes = [n for n in tree["nodes"] if n["kpi"]]
    out.append(
        svg_bars([(_label(n, language), _number(n["attainment"])) for n in kpi_nodes], percent=True)
    )
    out.append(
        _table(
            [t["node"], t["actual"], t["target"], t["required"], t["attainment"], t["previous"]],
            [
                [
                    ("&nbsp;&nbsp;" * n["depth"])
                    + (
                        f'<b class="short">{escape(_label(n, language))}</b>'
                        if n["id"] == tree["bottleneck"]
                        else escape(_label(n, language))
                    ),
                    _shown(n["actual"]),
                    _shown(n["target"]),
                    _shown(n["required_rounded"] or n["required"]),
                    _shown(n["attainment"]),
                    _shown(n["previous"]),
                ]
                for n in tree["nodes"]
            ],
        )
    )
    funnel = data["funnel"]
    out.append(f"<h2>{t['funnel']}</h2>")
    out.append(svg_bars([(s["stage"], Decimal(s["count"])) for s in funnel["steps"]]))
    out.append(
        _table(
            [t["stage"], t["count"], t["previous"], t["conversion"], t["drop_off"]],
            [
                [
                    escape(s["stage"]),
                    s["count"],
                    _shown(s["previous"]),
                    _shown(s["step_conversion"]),
                    _shown(s["drop_off"]),
                ]
                for s in funnel["steps"]
            ],
        )
    )
    out.append(f"<h2>{t['movers']}</h2>")
    if data["movers"]:
        out.append(
            _table(
                ["KPI", t["actual"], t["previous"], t["change"]],
                [
                    [
                        escape(m["name_en"] if language == "en" else m["name_ja"]),
                        _shown(m["value"]),
                        _shown(m["previous"]),
                        f"{_shown(m['change_percent'])}%",
                    ]
                    for m in data["movers"]
                ],
            )
        )
    else:
        out.append(f"<p>{t['no_movers']}</p>")
    out.append(f"<h2>{t['alerts']}</h2>")
    if data["alerts"]:
        out.append(
            _table(
                [t["rule"], t["state"], "KPI", t["scope"], t["action"]],
                [
                    [
                        escape(a["rule"]),
                        escape(a["state"]),
                        escape(a["kpi"]),
                        escape(a["scope"]),
                        escape(a["improvement_action"]),
                    ]
                    for a in data["alerts"]
                ],
            )
        )
    else:
        out.append(f"<p>{t['no_alerts']}</p>")
    table = data["rep_table"]
    out.append(f"<h2>{t['reps']}</h2>")
    out.append(
        _table(
            [t["rep"], *table["kpis"]],
            [[escape(r["label"]), *(_shown(v) for v in r["values"])] for r in table["rows"]],
        )
    )
    out.append("</body></html>")
    return "".join(out)

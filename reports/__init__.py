"""Reports, dashboards, the KPI design checklist, shared KPIs and exports."""

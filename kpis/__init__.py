"""KPI catalogue, trees, targets, snapshots, funnels, alerts and reports."""

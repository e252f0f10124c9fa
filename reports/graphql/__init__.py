"""GraphQL API of reports and dashboards."""

"""GraphQL API of handoff: rule sets, agreed versions, the audit trail, dry runs, handoffs,
the handoff queue and the routing simulation."""

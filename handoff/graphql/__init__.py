"""GraphQL of handoff: rule sets and versions, and the handoff queue, routing and SLAs."""

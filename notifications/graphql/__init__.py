"""GraphQL API of notifications: the inbox (members) and webhook endpoints (config:write)."""

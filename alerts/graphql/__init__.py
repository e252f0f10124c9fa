"""GraphQL API of the alerts app: rules, alerts and their lifecycle."""

"""Tenants: workspaces, memberships, teams, API tokens and the tenant-scoping machinery."""

"""Notifications: event types, in-app inbox, e-mail and signed webhooks (retries, dead letter)."""

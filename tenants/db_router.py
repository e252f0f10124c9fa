"""Database router: on PostgreSQL only the owner connection runs migrations."""

from typing import Any


class OwnerMigratesRouter:
    """The app role may not change the schema; the owner alias migrates the shared database."""

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "owner"

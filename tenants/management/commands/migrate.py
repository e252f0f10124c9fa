"""`migrate`, defaulting to the schema owner's connection on PostgreSQL."""

from typing import Any

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrateCommand


class Command(DjangoMigrateCommand):
    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        # The app role cannot change the schema; migrations run as the owner.
        parser.set_defaults(database="owner" if settings.IS_POSTGRES else "default")

"""Fill a tenant with deterministic demo pipeline data (see pipeline.demo for the model)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pipeline.demo import seed_demo
from pipeline.statistics import analyze_stale_tables


class Command(BaseCommand):
    help = (
        "Seed realistic, deterministic demo leads, activities, stage history and deals for a "
        "tenant (created if missing). Re-running replaces the tenant's previous demo data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="acme", help="Tenant slug (created if missing).")
        parser.add_argument("--leads", type=int, default=2000)
        parser.add_argument("--months", type=int, default=6)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--today",
            type=dt.date.fromisoformat,
            default=None,
            help="Pin the last day (YYYY-MM-DD, exclusive) instead of today in the tenant's zone.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = seed_demo(
                tenant_slug=options["tenant"],
                leads=options["leads"],
                months=options["months"],
                seed=options["seed"],
                today=options["today"],
                log=self.stdout if options["verbosity"] >= 2 else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # A seed is a bulk load: plan what follows (its rebuild) on fresh statistics.
        analyze_stale_tables()
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(warning))
        if any(result.replaced.values()):
            self.stdout.write(
                "Replaced the previous demo data: "
                + ", ".join(f"{count} {kind}" for kind, count in result.replaced.items())
            )
        lines = [
            f"Tenant {result.tenant.slug}: {result.working_days} working days "
            f"{result.start} .. {result.end}, {result.reps} reps in {result.teams} teams",
            *(f"  {kind:<28} {count:>10,}" for kind, count in sorted(result.counts.items())),
            "Rates (reference in brackets):",
        ]
        references = {
            "calls_per_rep_day": "34",
            "follow_ups_per_lead": "5.1",
            "meeting_rate": "0.20",
            "opportunity_rate": "0.50",
            "win_rate": "0.25",
            "email_delivery_rate": "0.96",
            "email_open_rate": "0.20",
            "email_click_rate": "0.25",
        }
        for key, value in result.rates.items():
            shown = "—" if value is None else f"{value:.3f}"
            lines.append(f"  {key:<28} {shown:>10} ({references[key]})")
        lines.append(f"Elapsed: {result.elapsed:.1f} s")
        self.stdout.write("\n".join(lines))

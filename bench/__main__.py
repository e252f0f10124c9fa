"""Run every benchmark module's `main()` in order: `python -m bench` (needs DATABASE_URL)."""

from __future__ import annotations

import importlib
import os
import pkgutil

import django


def run() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    django.setup()
    package = importlib.import_module("bench")
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"bench.{module.name}").main()


if __name__ == "__main__":
    run()

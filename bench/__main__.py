"""Run every benchmark module's `main()` in order: `python -m bench` (needs DATABASE_URL);
`python -m bench dashboard report` runs only the modules named."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import django


def run() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    django.setup()
    package = importlib.import_module("bench")
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name[0] != "_")
    wanted = sys.argv[1:]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"No such benchmark: {', '.join(unknown)} (there are: {', '.join(names)})")
    for name in names:
        if not wanted or name in wanted:
            importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    run()

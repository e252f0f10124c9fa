"""The deployment files: compose services, healthchecks, restarts, secrets; image contents;
requirements split; static files served by the app with DEBUG off."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRETS = (
    "insecure-development-key",
    "demo-password-2026",
    "kpi_app_password",
    "postgres:postgres@",
    "test-only-secret-key",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_web_a_worker_per_queue_and_one_beat(compose: dict[str, Any]) -> None:
    # the default stack: the services no profile holds back
    services = {k: v for k, v in compose["services"].items() if not v.get("profiles")}
    assert sorted(services) == [
        "beat",
        "migrate",
        "postgres",
        "redis",
        "web",
        "worker",
        "worker-bulk",
    ]
    # every queue a task is routed to (and the default one) has a worker consuming it
    queues = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    queues.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    consumed = set()
    for name in ("worker", "worker-bulk"):
        match = re.search(r"--queues=(\S+)", services[name]["command"])
        consumed |= set(match.group(1).split(","))
    assert consumed == queues == {"default", "bulk", "notifications"}
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "gunicorn" not in services["web"].get("command", "")  # the image's CMD


def test_compose_has_healthchecks_and_restart_policies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("web", "worker", "worker-bulk", "beat", "postgres", "redis"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    assert "-d default@$$HOSTNAME" in " ".join(services["worker"]["healthcheck"]["test"])
    assert "-d bulk@$$HOSTNAME" in " ".join(services["worker-bulk"]["healthcheck"]["test"])
    assert "celerybeat-schedule" in " ".join(services["beat"]["healthcheck"]["test"])
    # the app services start after migrations; migrations after the database
    for name in ("web", "worker", "worker-bulk", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
    assert "migrate" not in services["migrate"]["depends_on"]


def test_the_scale_profile_adds_two_workers_and_a_streaming_replica(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    scale = sorted(k for k, v in services.items() if "scale" in v.get("profiles", ()))
    assert scale == ["postgres-replica", "worker-scale"]
    workers = services["worker-scale"]
    assert workers["deploy"]["replicas"] == 2
    assert "--queues=default,notifications" in workers["command"]
    assert "-d scale@$$HOSTNAME" in " ".join(workers["healthcheck"]["test"])
    assert workers["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    replica = services["postgres-replica"]
    script = replica["entrypoint"][-1]
    # a base backup of the primary that writes standby.signal, then a hot standby
    assert "pg_basebackup -h postgres" in script and " -R " in script
    assert "hot_standby=on" in script
    assert replica["healthcheck"]["test"] and replica["restart"] == "unless-stopped"
    # the primary lets the replica connect for replication
    mounts = " ".join(services["postgres"]["volumes"])
    assert "docker-entrypoint-initdb.d" in mounts
    hba = (ROOT / "deploy" / "postgres" / "10-replication.sh").read_text()
    assert "host replication" in hba
    # the app reads from it only when told to
    assert compose["x-app"]["environment"]["DATABASE_REPLICA_URL"] == "${DATABASE_REPLICA_URL:-}"


def test_no_service_carries_a_development_secret(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in DEV_SECRETS:
        assert secret not in text
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        for key in ("DJANGO_SECRET_KEY", "DATABASE_APP_PASSWORD", "POSTGRES_PASSWORD"):
            if key in environment:
                # required from the environment, no default
                assert re.fullmatch(rf"\$\{{{key}:\?[^}}]*\}}", environment[key]), (name, key)
        assert "DJANGO_DEBUG" not in environment, name


def test_the_image_takes_production_requirements_only_and_no_local_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "-r requirements-dev.lock" not in dockerfile
    assert "collectstatic" in dockerfile
    assert '"gunicorn"' in dockerfile
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "db.sqlite3", ".env", ".git", "__pycache__", "artifacts"} <= ignored


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_production_and_dev_requirements_are_split_and_pinned() -> None:
    import tomllib

    production = _pins(ROOT / "requirements.lock")
    dev = _pins(ROOT / "requirements-dev.lock")
    assert (ROOT / "requirements-dev.lock").read_text().count("-r requirements.lock") == 1
    for tool in ("pytest", "pytest-django", "factory-boy", "ruff", "pyyaml"):
        assert tool not in production and tool in dev
    assert not set(production) & set(dev)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, version = re.sub(r"\[.*\]", "", requirement).split("==")
        assert production[name.lower().replace("_", "-")] == version, name
    for requirement in project["optional-dependencies"]["dev"]:
        name, version = requirement.split("==")
        assert dev[name.lower().replace("_", "-")] == version, name


@pytest.mark.django_db
def test_the_admin_css_is_served_by_the_app_with_debug_off(tmp_path: Path) -> None:
    # given collectstatic into a fresh STATIC_ROOT, in production mode
    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path):
        call_command("collectstatic", "--no-input", verbosity=0)
        assert (tmp_path / "admin" / "css" / "base.css").exists()
        # when a fresh process (new middleware) is asked for the admin's stylesheet
        response = Client().get("/static/admin/css/base.css", HTTP_ACCEPT_ENCODING="gzip")
        # then WhiteNoise answers it, compressed, before any view or tenant middleware
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/css")
        assert response["Content-Encoding"] == "gzip"
        assert type(response).__module__.startswith("whitenoise")
        # and the admin's login page links it
        login = Client().get("/admin/login/")
        assert b"/static/admin/css/base.css" in login.content


def test_every_environment_variable_the_settings_read_is_documented() -> None:
    source = (ROOT / "backend" / "settings.py").read_text()
    names = set(re.findall(r"env(?:\.[a-z]+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", source))
    # The configuration table is in docs/operations.md; a topic's own settings (e-mail,
    # webhooks) are documented with it, in docs/ too.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = "\n".join(page.read_text() for page in pages)
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    # `GRAPHQL_MAX_ALIASES` etc. are documented as `GRAPHQL_MAX_DEPTH` / `_ALIASES` / ...
    documented |= {f"GRAPHQL_MAX{suffix}" for suffix in re.findall(r"`(_[A-Z_]+)`", readme)}
    documented |= {f"API_TOKEN_RATE{suffix}" for suffix in re.findall(r"`(_[A-Z_]+)`", readme)}
    assert len(names) > 40
    assert sorted(names - documented) == []


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_docker_compose_validates_the_file_and_requires_the_secrets() -> None:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    secrets = {"DJANGO_SECRET_KEY": "k", "POSTGRES_PASSWORD": "p", "DATABASE_APP_PASSWORD": "a"}
    command = ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"]
    ok = subprocess.run(command, env={**base, **secrets}, capture_output=True, text=True)
    assert (ok.returncode, ok.stderr) == (0, "")
    missing = subprocess.run(command, env=base, capture_output=True, text=True)
    assert missing.returncode != 0
    assert "set " in missing.stderr

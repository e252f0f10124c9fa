"""Helpers of the HTTP benchmarks: a real server (and worker) in subprocesses, and a client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
    env["DJANGO_DEBUG"] = "0"
    env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1"
    env.update(extra)
    return env


@contextmanager
def server(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """The production server (gunicorn, as in the Dockerfile; `workers` sync workers, each
    serving one request at a time on a kept database connection) on a free port; yields
    its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "backend.wsgi:application"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql/"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def worker(env: dict[str, str]) -> Iterator[None]:
    """A real Celery worker (one process) for the duration of the block."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backend", "worker", "--pool=solo",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)  # connects to the broker
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def clear_shared_cache(url: str) -> None:
    """Empty the Redis database the server and worker share as their cache (and broker).

    The bench process may use another cache (its own memory): its writes (rebuilds,
    clean-ups) then bumped no KPI read version there, and a kpiTree response cached by an
    earlier run would be served as current. Call it after those writes, before the server.
    """
    import redis

    redis.Redis.from_url(url).flushdb()


def post(url: str, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]

# The few commands a person needs. `make run` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The local venv gets production + dev/test tools; the Docker image installs requirements.lock only.
STAMP := $(VENV)/.installed-$(shell cat requirements.lock requirements-dev.lock | cksum | cut -d' ' -f1)

# Tests run in production mode (DEBUG off) with a throwaway key.
TEST_ENV := DJANGO_DEBUG=0 DJANGO_SECRET_KEY=test-only-secret-key-not-for-production
RUN_ENV := DJANGO_DEBUG=$${DJANGO_DEBUG:-1}
# The demo's seeding steps fire alerts and finish reports: their e-mails go to memory, not to
# the terminal (the console backend prints the ones sent while the server runs).
SEED_ENV := $(RUN_ENV) EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend

.PHONY: venv run test lint format schema worker beat bench clean

venv: $(STAMP)

$(STAMP): requirements.lock requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: venv
	$(RUN_ENV) $(PY) manage.py ensure_database
	$(RUN_ENV) $(PY) manage.py migrate --no-input
	$(RUN_ENV) $(PY) manage.py seed_demo --tenant acme --leads 6000 --months 6 --seed 42
	$(RUN_ENV) $(PY) manage.py rebuild_kpi_snapshots --tenant acme
	$(RUN_ENV) $(PY) manage.py seed_demo_targets --tenant acme
	$(SEED_ENV) $(PY) manage.py seed_demo_alerts --tenant acme
	$(SEED_ENV) $(PY) manage.py seed_demo_handoff --tenant acme
	$(SEED_ENV) $(PY) manage.py seed_demo_handoff_queue --tenant acme
	$(SEED_ENV) $(PY) manage.py generate_due_reports --tenant acme --with-dashboards
	$(RUN_ENV) $(PY) manage.py demo_tenant --tenant acme
	$(RUN_ENV) $(PY) manage.py runserver 127.0.0.1:8000

test: venv
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schema: venv
	$(TEST_ENV) $(PY) manage.py export_schema backend.schema --path schema.graphql

# One local worker consumes both queues (default: refreshes and alerts; bulk: full rebuilds);
# docker-compose runs one worker per queue.
worker: venv
	$(PY) -m celery -A backend worker --loglevel=INFO --queues=default,bulk,notifications

beat: venv
	$(PY) -m celery -A backend beat --loglevel=INFO

bench: venv
	$(TEST_ENV) DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kpi_bench} \
		$(PY) -m bench

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache

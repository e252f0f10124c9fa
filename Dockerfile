# Production image for docker-compose (web, workers, beat): production requirements only.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Production dependencies only (dev and test tools live in requirements-dev.lock).
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
# .dockerignore keeps .venv, .env, db.sqlite3, .git and caches out of this copy.
COPY . .
# The admin's CSS and JS, served by WhiteNoise (settings need a key to load; not used after).
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input \
    && useradd --create-home app && chown -R app /app
USER app
EXPOSE 8000
# Liveness for plain `docker run`; compose and Kubernetes probe /readyz as well.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["gunicorn", "backend.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60"]

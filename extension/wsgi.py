"""The WSGI entry point gunicorn loads in each worker."""

from extension.server import build_app

app = build_app()

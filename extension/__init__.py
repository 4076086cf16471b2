"""The extension: aggregated API server and drift-guard webhooks, run under gunicorn."""

"""The WSGI entry point gunicorn loads in each worker."""

import gc

from extension.server import build_app

app = build_app()
# What is loaded by now (the kubernetes client's models, Flask, the settings) lives as long as the
# worker. Frozen out of the collector's sight, it no longer makes each full collection walk the
# whole heap: measured, a LIST of 1,000 Applications set one off every other time, and each held
# every thread for 65-90 ms. The higher first threshold lets a request's short-lived objects die by
# reference count before a collection looks at them (one full collection of 5-12 ms per such LIST
# otherwise, measured).
gc.freeze()
gc.set_threshold(100_000, 50, 100)

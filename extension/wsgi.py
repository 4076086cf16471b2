"""The WSGI entry point gunicorn loads in each worker."""

import gc

from extension.server import build_app

app = build_app()
# What is loaded by now (the kubernetes client's models, Flask, the settings) lives as long as the
# worker. Frozen out of the collector's sight, it no longer makes each full collection walk the
# whole heap: before, every other LIST of 1,000 Applications set one off, and each held every
# thread for 65-90 ms (measured). The higher first threshold lets a request's short-lived objects
# die by reference count before a collection looks at them (with the default 700, each such LIST
# set off a full collection of 5-12 ms, measured). The controller showed no such gain (measured).
gc.freeze()
gc.set_threshold(100_000, 50, 100)

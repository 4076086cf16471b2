"""The aggregated API for ``applications.gitops.driftguard.io``.

``schema``, ``validation`` and ``openapi`` are pure: plain dicts in, plain dicts out. They never
import flask, kubernetes or git, so the API server, the controller and the tests share them.
"""

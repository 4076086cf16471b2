"""CSRF protection for the API's writes when a browser makes them.

A dashboard user's browser holds no credential of ours, but through ``kubectl proxy`` (which adds
the user's own) any page the browser opens could send it writes: a form posting to
``http://127.0.0.1:8001/apis/.../applications/shop/sync``. So a write that comes from a browser
(it carries ``Origin`` or ``Sec-Fetch-Site``, which browsers always send on writes and page
scripts cannot remove) must carry ``X-CSRF-Token`` equal to the ``driftguard-csrf`` cookie: the
dashboard page sets both (a double-submit token), and a page of another origin can read neither
nor send a custom header without a CORS preflight that kube-apiserver refuses. kubectl and the
other API clients send neither header and are not affected.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping

COOKIE = "driftguard-csrf"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def refusal(method: str, header: Callable[[str], str | None], cookies: Mapping[str, str]) -> str | None:
    """Why a request must be refused, or None. Pure: ``header`` reads a header as received."""
    if method.upper() in SAFE_METHODS:
        return None
    if not any(header(h) for h in _BROWSER_HEADERS):
        return None  # not a browser: kubectl, client libraries, controllers
    sent, expected = header(HEADER) or "", cookies.get(COOKIE, "")
    if not sent or not expected:
        return (
            f"a write from a browser must carry the {HEADER} header the driftguard dashboard sends; "
            "reload the dashboard (…/v1alpha1/ui/) and try again"
        )
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        return f"the {HEADER} header does not match this browser's dashboard session; reload the dashboard"
    return None

"""Delegated authentication and authorization, as every aggregated API server does it.

Authentication: only a connection whose client certificate chains to the requestheader CA
(TLS verifies the chain: gunicorn's ``ca_certs`` is that CA) and whose CN is an allowed name may
assert a user through ``X-Remote-User``/``X-Remote-Group``/``X-Remote-Extra-*``. Anything else is
401, so a forged header on a direct connection gets nowhere.

Authorization: a SubjectAccessReview per request, cached briefly (allowed and denied apart).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3

from extension.api import errors, jsoncodec
from extension.kubehttp import KubeHTTP, status_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class RequestHeaderConfig:
    """kube-system/extension-apiserver-authentication, as kube-apiserver publishes it."""

    client_ca_pem: str
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)

    @classmethod
    def from_configmap_data(cls, data: Mapping[str, str]) -> RequestHeaderConfig:
        ca = data.get("requestheader-client-ca-file", "")
        if not ca:
            raise ValueError(
                "kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: "
                "kube-apiserver runs without --requestheader-client-ca-file, so no aggregated API can work"
            )

        def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = data.get(key)
            return tuple(json.loads(raw)) if raw else default

        return cls(
            client_ca_pem=ca,
            allowed_names=names("requestheader-allowed-names", ()),
            username_headers=names("requestheader-username-headers", cls.username_headers),
            group_headers=names("requestheader-group-headers", cls.group_headers),
            extra_prefixes=names("requestheader-extra-headers-prefix", cls.extra_prefixes),
        )


def _common_name(peer_cert: Mapping[str, Any] | None) -> str | None:
    for rdn in (peer_cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


# gunicorn joins repeated headers with commas before the WSGI environ exists, and a group name may
# itself contain a comma (an LDAP DN, or "x,system:masters" from a careless IdP). So a pre_request
# hook (``carry_identity``) reads the raw header list and passes groups and extras on, each value
# apart, in this one header; whatever a client sent under this name is dropped first.
IDENTITY_HEADER = "X-Driftguard-Identity"


def carry_identity(
    headers: list[tuple[str, str]], config: RequestHeaderConfig | None = None
) -> list[tuple[str, str]]:
    """The request's headers with IDENTITY_HEADER replaced by the group and extra header values."""
    config = config or RequestHeaderConfig(client_ca_pem="")
    group_names = {h.upper() for h in config.group_headers}
    prefixes = tuple(p.upper() for p in config.extra_prefixes)
    kept = [(n, v) for n, v in headers if n.upper() != IDENTITY_HEADER.upper()]
    groups = [v.strip() for n, v in kept if n.upper() in group_names]
    extra: dict[str, list[str]] = {}
    for name, value in kept:
        prefix = next((p for p in prefixes if name.upper().startswith(p) and len(name) > len(p)), None)
        if prefix:
            key = urllib.parse.unquote(name[len(prefix) :].lower())
            extra.setdefault(key, []).append(value.strip())
    # Upper case, as gunicorn keeps header names: it builds the environ key from the name as is.
    return [*kept, (IDENTITY_HEADER.upper(), json.dumps({"groups": groups, "extra": extra}))]


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def authenticate(
    peer_cert: Mapping[str, Any] | None, environ: Mapping[str, Any], config: RequestHeaderConfig
) -> User:
    """The user the front proxy vouches for. Pure: the TLS layer has already verified the chain."""
    if not peer_cert:
        raise errors.unauthorized("Unauthorized: no client certificate from the front proxy")
    cn = _common_name(peer_cert)
    if config.allowed_names and cn not in config.allowed_names:
        raise errors.unauthorized(f"Unauthorized: client certificate CN {cn!r} is not an allowed front proxy")
    name = next((environ[k] for h in config.username_headers if (k := _environ_key(h)) in environ), "")
    if not name:
        raise errors.unauthorized("Unauthorized: the front proxy named no user")
    try:
        carried = json.loads(environ[_environ_key(IDENTITY_HEADER)])
        groups = [str(g) for g in carried["groups"]]
        extra = {str(k): [str(v) for v in vs] for k, vs in carried["extra"].items()}
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        # Only carry_identity writes this header; without it the groups cannot be read safely.
        raise errors.unauthorized("Unauthorized: the identity headers could not be read") from exc
    return User(name, tuple(groups), tuple((k, tuple(v)) for k, v in sorted(extra.items())))


@dataclass(frozen=True)
class Attributes:
    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    subresource: str = ""
    group: str = "gitops.driftguard.io"


@dataclass
class Authorizer:
    """SubjectAccessReviews with a short TTL cache, like kube's delegating authorizer
    (allowed 10 s, denied 5 s by default). The review names the object, as kube-apiserver's own
    authorization does: asking about the whole namespace first would be exact for RBAC, but an
    authorization webhook may deny one name while RBAC allows the namespace."""

    http: KubeHTTP
    allowed_ttl: float = 10.0
    denied_ttl: float = 5.0
    _cache: dict[tuple[Any, ...], tuple[float, bool, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, user: User, attrs: Attributes) -> tuple[bool, str]:
        key = (user, attrs)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > now:
                return hit[1], hit[2]
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "extra": {k: list(v) for k, v in user.extra},
            "resourceAttributes": {
                "group": attrs.group, "resource": attrs.resource, "subresource": attrs.subresource or None,
                "verb": attrs.verb, "namespace": attrs.namespace, "name": attrs.name,
            },
        }  # fmt: skip
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        try:
            response = self.http.send(
                "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body, timeout=10.0
            )
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            log.error("SubjectAccessReview for %s failed: %s", user.name, exc)
            raise errors.internal(f"the authorization check could not be made: {exc}") from exc
        if response.status >= 300:
            message = status_of(response.data).get("message") or f"HTTP {response.status}"
            log.error("SubjectAccessReview for %s failed: %s", user.name, message)
            raise errors.internal(f"the authorization check could not be made: {message}")
        status = jsoncodec.loads(response.data).get("status") or {}
        allowed, reason = bool(status.get("allowed")), str(status.get("reason") or "")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + (self.allowed_ttl if allowed else self.denied_ttl), allowed, reason)
        return allowed, reason

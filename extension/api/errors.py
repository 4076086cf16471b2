"""metav1.Status errors. Every error the API answers is one of these, with kube's code and reason."""

from __future__ import annotations

from typing import Any

from extension.api.kinds import Kind
from extension.api.schema import GROUP


class APIError(Exception):
    """An error answered as a ``metav1.Status`` with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: Kind, name: str | None, **more: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"group": GROUP, "kind": kind.plural}
    if name:
        details["name"] = name
    details.update(more)
    return details


def not_found(kind: Kind, name: str) -> APIError:
    return APIError(404, "NotFound", f'{kind.resource} "{name}" not found', _details(kind, name))


def already_exists(kind: Kind, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{kind.resource} "{name}" already exists', _details(kind, name))


def conflict(kind: Kind, name: str, why: str) -> APIError:
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.resource} "{name}": {why}',
        _details(kind, name),
    )


def stale(kind: Kind, name: str) -> APIError:
    """An update or delete whose resourceVersion precondition no longer holds."""
    return conflict(
        kind,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )


def invalid(kind: Kind, name: str, causes: list[dict[str, str]]) -> APIError:
    text = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    return APIError(
        422,
        "Invalid",
        f'{kind.kind}.{GROUP} "{name}" is invalid: {text}',
        {**_details(kind, name), "kind": kind.kind, "causes": causes},
    )


def forbidden_by_policy(kind: Kind, name: str, message: str) -> APIError:
    """A write RBAC allows but a rule of ours refuses (a project's, say): 403, named like RBAC's."""
    return APIError(
        403, "Forbidden", f'{kind.resource} "{name}" is forbidden: {message}', _details(kind, name)
    )


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> APIError:
    return APIError(401, "Unauthorized", message)


def forbidden(user: str, verb: str, resource: str, namespace: str | None, name: str | None) -> APIError:
    """The message kube-apiserver gives, e.g. ``applications.gitops.driftguard.io "shop" is forbidden:
    User "jane" cannot create resource "applications/sync" in API group "gitops.driftguard.io" in
    the namespace "team-a"``."""
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    plural = resource.partition("/")[0]
    subject = f'{plural}.{GROUP} "{name}"' if name else f"{plural}.{GROUP}"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{GROUP}"{scope}'
    )
    details: dict[str, Any] = {"group": GROUP, "kind": plural}
    if name:
        details["name"] = name
    return APIError(403, "Forbidden", message, details)


def method_not_allowed(method: str, path: str) -> APIError:
    return APIError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource: {method} {path}",
    )


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml "
        f"(got {content_type or 'none'})",
    )


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def too_large(limit: int) -> APIError:
    return APIError(
        413, "RequestEntityTooLarge", f"the request body is larger than the limit of {limit} bytes"
    )


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message)

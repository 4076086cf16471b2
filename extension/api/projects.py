"""What an AppProject allows, decided over plain dicts with Argo CD's rules. Pure.

A project bounds the Applications that use it: which namespaces' Applications may use it
(``sourceNamespaces``), which repositories they may deploy from (``sourceRepos``), where
(``destinations``), which kinds (the four resource lists) and as whom (``destinationServiceAccounts``).
The aggregated API asks at write time, the controller again before every sync, for every rendered
object. Patterns are globs; a leading ``!`` denies, as in Argo CD:

- ``sourceRepos``: allowed when some pattern matches and no ``!`` pattern does. ``*`` alone matches
  every URL; elsewhere ``*`` stays inside one path segment and ``**`` crosses them.
- ``destinations``: an entry matches when its server (or name) and its namespace both match; a
  ``!`` field that does not match denies. Allowed when some entry matches and none denies.
- kinds: a namespaced kind is allowed unless ``namespaceResourceWhitelist`` is set and misses it,
  or ``namespaceResourceBlacklist`` lists it; a cluster-scoped kind only when
  ``clusterResourceWhitelist`` lists it and ``clusterResourceBlacklist`` does not.
- ``sourceNamespaces``: globs; Applications in the install namespace may use any project.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

INSTALL_NAMESPACE = "driftguard-system"
DEFAULT_PROJECT = "default"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"

Project = dict[str, Any]


def comparable_url(url: str) -> str:
    """A URL as projects and credentials compare it, as Argo CD does: normalised, percent-decoded
    and lower-cased whole (servers such as GitHub ignore case in paths, so a deny pattern must
    too)."""
    return unquote(normalise_url(url)).lower()


def normalise_url(url: str) -> str:
    """``url`` with scheme and host lower-cased and any trailing ``/`` or ``.git`` removed.

    scp-like addresses (``git@host:org/repo``) keep their shape; only the host is lower-cased.
    """
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        netloc = parts.netloc
        userinfo, at, hostport = netloc.rpartition("@")
        netloc = f"{userinfo}{at}{hostport.lower()}"
        url = f"{parts.scheme.lower()}://{netloc}{parts.path}"
    elif ":" in url.split("/", 1)[0]:
        authority, _, path = url.partition(":")
        user, at, host = authority.rpartition("@")
        url = f"{user}{at}{host.lower()}:{path}"
    while True:
        trimmed = url.rstrip("/").removesuffix(".git")
        if trimmed == url:
            return url
        url = trimmed


LOCAL_SETTING = "DRIFTGUARD_ALLOW_LOCAL_REPOSITORIES"


def is_local_url(url: str) -> bool:
    """A repository on the controller's own filesystem (``file://``)."""
    return url.strip().lower().startswith("file:")


def local_refused(url: str) -> str:
    return (
        f"{url}: file:// repositories are read from the controller's own filesystem, where its Git "
        "cache and every other repository it fetched live, so they are refused; an operator may allow "
        f"them for local experiments with {LOCAL_SETTING}=true on the extension and the controller "
        "(unsafe on a shared cluster). Serve the repository over git://, http(s):// or ssh:// instead"
    )


@lru_cache(maxsize=1024)
def _glob(pattern: str, separator: str) -> re.Pattern[str]:
    """gobwas/glob as Argo CD compiles it: ``*`` within a segment (any run when no separator),
    ``**`` across segments, ``?`` one character, ``[...]`` a class, ``{a,b}`` alternatives."""
    out, i = [], 0
    one = f"[^{re.escape(separator)}]" if separator else "."
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append(f"{one}*")
        elif char == "?":
            out.append(one)
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\").replace("^", "\\^")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif char == "{":
            end = pattern.find("}", i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                out.append("(?:" + "|".join(re.escape(p) for p in pattern[i + 1 : end].split(",")) + ")")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, value: str, *, negation: bool = False, separator: str = "") -> bool:
    """Argo CD's ``globMatch``: with ``negation``, ``!p`` matches what ``p`` does not."""
    if negation and pattern.startswith("!"):
        return not glob_match(pattern[1:], value, separator=separator)
    if pattern == "*":
        return True
    return _glob(pattern, separator).fullmatch(value) is not None


def _spec(project: Project) -> dict[str, Any]:
    spec = project.get("spec")
    return spec if isinstance(spec, dict) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _entries(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --- the rules ----------------------------------------------------------------------------------
def namespace_may_use(project: Project, namespace: str) -> bool:
    """Whether Applications in ``namespace`` may use ``project``."""
    if namespace == INSTALL_NAMESPACE:
        return True
    return any(glob_match(p, namespace) for p in _strings(_spec(project).get("sourceNamespaces")))


_URL_PATTERN = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<host>[^/]*)(?P<path>.*)", re.DOTALL)


def _normalise_pattern(pattern: str) -> str:
    """A sourceRepos pattern normalised as URLs are, without reading its glob characters as URL
    syntax (``?`` is no query here)."""
    if (match := _URL_PATTERN.fullmatch(pattern.strip())) is not None:
        user, at, host = match["host"].rpartition("@")
        pattern = f"{match['scheme'].lower()}{user}{at}{host.lower()}{match['path']}"
    while True:
        trimmed = pattern.rstrip("/").removesuffix(".git")
        if trimmed == pattern:
            return pattern
        pattern = trimmed


def repo_allowed(project: Project, repo_url: str) -> bool:
    source = comparable_url(repo_url)
    matched = False
    for pattern in _strings(_spec(project).get("sourceRepos")):
        deny = pattern.startswith("!")
        normalised = ("!" if deny else "") + unquote(_normalise_pattern(pattern.removeprefix("!"))).lower()
        if glob_match(normalised, source, negation=True, separator="/"):
            matched = True
        elif deny:
            return False
    return matched


def destination(spec_destination: Any) -> tuple[str, str, str]:
    """An Application's destination as (server, name, namespace), in-cluster filled in."""
    dest = spec_destination if isinstance(spec_destination, dict) else {}
    server, name = str(dest.get("server") or "").rstrip("/"), str(dest.get("name") or "")
    if not server and name in ("", IN_CLUSTER_NAME):
        server = IN_CLUSTER_SERVER
    if not name and server == IN_CLUSTER_SERVER:
        name = IN_CLUSTER_NAME
    return server, name, str(dest.get("namespace") or "")


def destination_allowed(project: Project, server: str, name: str, namespace: str) -> bool:
    """Argo CD's isDestinationMatched."""
    matched, denied = False, False
    for item in _entries(_spec(project).get("destinations")):
        item_server, item_name = str(item.get("server") or ""), str(item.get("name") or "")
        item_namespace = str(item.get("namespace") or "")
        name_ok = bool(name) and bool(item_name) and glob_match(item_name, name, negation=True)
        server_ok = bool(server) and bool(item_server) and glob_match(item_server, server, negation=True)
        namespace_ok = glob_match(item_namespace, namespace, negation=True)
        if (server_ok or name_ok) and namespace_ok:
            matched = True
        elif (
            (not name_ok and item_name.startswith("!"))
            or (not server_ok and item_server.startswith("!"))
            or (not namespace_ok and item_namespace.startswith("!"))
        ):
            denied = True
    return matched and not denied


def _listed(entries: Any, group: str, kind: str) -> bool:
    return any(
        fnmatch.fnmatchcase(kind, str(e.get("kind") or ""))
        and fnmatch.fnmatchcase(group, str(e.get("group") or ""))
        for e in _entries(entries)
    )


def kind_allowed(project: Project, group: str, kind: str, namespaced: bool) -> str | None:
    """None when the project allows the kind; else the rule that refuses it."""
    spec = _spec(project)
    if namespaced:
        whitelist = spec.get("namespaceResourceWhitelist")
        if _entries(whitelist) and not _listed(whitelist, group, kind):
            return "namespaceResourceWhitelist does not list it"
        if _listed(spec.get("namespaceResourceBlacklist"), group, kind):
            return "namespaceResourceBlacklist lists it"
        return None
    if not _listed(spec.get("clusterResourceWhitelist"), group, kind):
        return "clusterResourceWhitelist does not list it (cluster-scoped kinds must be listed)"
    if _listed(spec.get("clusterResourceBlacklist"), group, kind):
        return "clusterResourceBlacklist lists it"
    return None


def service_account(project: Project, server: str, namespace: str, app_namespace: str = "") -> str | None:
    """The username every request of an Application with this destination impersonates: the first
    ``destinationServiceAccounts`` entry whose server and namespace match; a name without a
    namespace lives in the destination namespace (the Application's, when the destination names
    none). None when the project names no entry at all (the controller's own identity); raises
    ProjectError when entries exist but none matches."""
    entries = _entries(_spec(project).get("destinationServiceAccounts"))
    if not entries:
        return None
    for item in entries:
        if glob_match(str(item.get("server") or ""), server) and glob_match(
            str(item.get("namespace") or ""), namespace
        ):
            account = str(item.get("defaultServiceAccount") or "").strip()
            sa_namespace, sep, sa_name = account.rpartition(":")
            return f"system:serviceaccount:{sa_namespace if sep else (namespace or app_namespace)}:{sa_name}"
    raise ProjectError(
        f"no destinationServiceAccounts entry matches server {server} and namespace {namespace or '<none>'}"
    )


class ProjectError(Exception):
    """A project's rules refuse something; the message names the rule."""


@dataclass(frozen=True)
class Refusal:
    """One thing a project refuses: what, and by which rule."""

    what: str
    rule: str

    def __str__(self) -> str:
        return f"{self.what}: {self.rule}"


def application_refusals(project: Project, name: str, app_namespace: str, spec: Any) -> list[Refusal]:
    """What project ``name`` refuses about an Application's spec: its namespace, its repository,
    its destination. Empty when all is allowed."""
    spec = spec if isinstance(spec, dict) else {}
    refused = []
    if not namespace_may_use(project, app_namespace):
        refused.append(
            Refusal(f"namespace {app_namespace}", f"project {name} does not list it in sourceNamespaces")
        )
    repo = (
        str((spec.get("source") or {}).get("repoURL") or "") if isinstance(spec.get("source"), dict) else ""
    )
    if repo and not repo_allowed(project, repo):
        refused.append(Refusal(f"repository {repo}", f"project {name} does not allow it in sourceRepos"))
    server, dest_name, namespace = destination(spec.get("destination"))
    if not destination_allowed(project, server, dest_name, namespace):
        refused.append(Refusal(
            f"destination {server} namespace {namespace or '<none>'}",
            f"project {name} does not allow it in destinations",
        ))  # fmt: skip
    try:
        service_account(project, server, namespace, app_namespace)
    except ProjectError as exc:
        refused.append(
            Refusal(f"destination {server} namespace {namespace or '<none>'}", f"project {name}: {exc}")
        )
    options = spec.get("syncPolicy") if isinstance(spec.get("syncPolicy"), dict) else {}
    if "CreateNamespace=true" in _strings(options.get("syncOptions")):
        rule = kind_allowed(project, "", "Namespace", False)
        if rule:
            refused.append(Refusal("syncOptions CreateNamespace=true", f"project {name}'s {rule}"))
    return refused


def object_name(group: str, kind: str, namespace: str, name: str, namespaced: bool) -> str:
    """How a refusal names an object: ``Kind.group namespace/name``."""
    return f"{kind}{'.' + group if group else ''} {namespace + '/' if namespaced else ''}{name}"


def object_refusals(
    project: Project,
    name: str,
    server: str,
    dest_name: str,
    objects: Iterable[tuple[str, str, str, str, bool]],
) -> list[Refusal]:
    """What project ``name`` refuses among rendered objects, each given as (group, kind, namespace,
    name, namespaced): kinds the resource lists refuse, namespaces outside its destinations."""
    refused = []
    for group, kind, namespace, obj_name, namespaced in objects:
        what = object_name(group, kind, namespace, obj_name, namespaced)
        rule = kind_allowed(project, group, kind, namespaced)
        if rule:
            refused.append(Refusal(what, f"project {name}'s {rule}"))
        elif namespaced and not destination_allowed(project, server, dest_name, namespace):
            refused.append(Refusal(what, f"project {name}'s destinations do not allow namespace {namespace}"))
    return refused

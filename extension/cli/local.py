"""``kubectl driftguard diff NAME --local DIR``: a working tree against the cluster, before a push.

DIR is rendered on this machine by the controller's own renderer (controller/render.py) with the
Application's spec.source options, prepared as the controller prepares objects before it applies
them (controller/plan.py), and compared with the live objects read with the user's kubeconfig and
identity, so that RBAC governs every read (``compare.entries``). Nothing is written to the cluster,
not even a dry run. Exit codes as kubectl diff: 0 no difference, 1 a difference, 2 cannot compare.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from controller import hookspec, plan
from controller.render import RenderError, render
from extension.api.fieldsets import Schema
from extension.api.tracking import AppKey, ObjectRef
from extension.cli import compare
from extension.cli import render as show
from extension.cli.client import CLIError, Kube

TOOLS = ("kubectl", "helm")  # kustomize is ``kubectl kustomize``, as the controller runs it


class Out(Protocol):
    tty: bool

    def line(self, text: str = "") -> None: ...


def repository(directory: str) -> tuple[Path, str]:
    """(the repository root, DIR relative to it): the root is DIR's Git top-level when DIR is in a
    Git work tree, else DIR itself."""
    path = Path(directory)
    if not path.is_dir():
        raise CLIError(f"error: --local {directory}: not a directory")
    real = Path(os.path.realpath(path))
    root = real
    git = shutil.which("git")
    if git:
        found = subprocess.run(
            [git, "-C", str(real), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if found.returncode == 0 and found.stdout.strip():
            root = Path(os.path.realpath(found.stdout.strip()))
    return root, real.relative_to(root).as_posix() if real != root else "."


@contextlib.contextmanager
def tools() -> Iterator[Path]:
    """A directory with ``kubectl`` and ``helm`` as the controller's DRIFTGUARD_BIN_DIR holds them:
    that variable when set, else links to the ones on PATH (a missing one fails the render that
    needs it, with the renderer's message)."""
    given = os.environ.get("DRIFTGUARD_BIN_DIR")
    if given:
        yield Path(given)
        return
    with tempfile.TemporaryDirectory(prefix="driftguard-tools-") as tmp:
        for tool in TOOLS:
            found = shutil.which(tool)
            if found:
                (Path(tmp) / tool).symlink_to(os.path.realpath(found))
        yield Path(tmp)


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


class Cluster:
    """What the comparison reads, as the user: discovery, live objects and kind schemas."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.schemas: dict[str, dict[str, Any] | None] = {}

    def namespaced(self, objects: list[dict[str, Any]]) -> plan.Namespaced:
        scopes: dict[tuple[str, str], bool] = {}
        for api_version in sorted({str(o.get("apiVersion") or "") for o in objects} - {""}):
            group = api_version.rpartition("/")[0]
            for res in self.kube.api_resources(api_version) or []:
                scopes.setdefault((group, res["kind"]), bool(res["namespaced"]))
        return lambda group, kind: scopes.get((group, kind))

    def read(self, live: compare.Live, ref: ObjectRef, group_version: str | None) -> None:
        """The live object of ``ref`` into ``live``: found, missing, or the error kubectl prints.
        An unreachable server stops the whole comparison."""
        path = None
        if group_version:
            path = self.kube.object_path(group_version, ref.kind, ref.namespace, ref.name)
        if path is None:  # a kind the server does not serve (yet): no live object
            return
        try:
            found = self.kube.get_object(path)
        except CLIError as exc:
            if not str(exc).startswith("Error from server ("):
                raise
            live.errors[ref] = str(exc)
            return
        if found is not None:
            live.objects[ref] = found

    def schema(self, obj: dict[str, Any]) -> Schema | None:
        api_version = str(obj.get("apiVersion") or "")
        if api_version not in self.schemas:
            self.schemas[api_version] = self.kube.openapi(api_version)
        group, _, version = api_version.rpartition("/")
        return compare.kind_schema(self.schemas[api_version], group, version, str(obj.get("kind") or ""))


def cmd_diff_local(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    app = kube.app(args.name)
    meta, spec = app["metadata"], app.get("spec") or {}
    key = AppKey(str(meta["namespace"]), str(meta["name"]))
    root, path = repository(args.local)
    source = copy.deepcopy(spec.get("source") or {})
    declared = PurePosixPath(str(source.get("path") or ".")).as_posix()
    if declared != path:
        print(f"note: comparing path {path} of {root}; the Application's path is {declared}", file=sys.stderr)
    source["path"] = path
    destination = str((spec.get("destination") or {}).get("namespace") or "")
    try:
        with tools() as bin_dir:
            rendered = render(root, source, bin_dir=bin_dir, default_namespace=destination, app_name=key.name)
    except RenderError as exc:
        raise CLIError(f"error: cannot render {args.local}: {exc.message}") from None
    if not rendered and not ((spec.get("syncPolicy") or {}).get("automated") or {}).get("allowEmpty"):
        raise CLIError(
            f"error: path {path} rendered no objects; a sync would apply and prune nothing "
            "(spec.syncPolicy.automated.allowEmpty is not set)"
        )
    cluster = Cluster(kube)
    try:
        prepared = plan.prepare(rendered, key, destination, cluster.namespaced(rendered))
        # Hooks are run by a sync, not compared: as the controller does, only the other objects.
        prepared = hookspec.partition(prepared).resources
    except plan.PlanError as exc:
        raise CLIError(f"error: {exc}") from None
    live = compare.Live()
    wanted = set()
    for obj in prepared:
        ref = ObjectRef.of(obj)
        wanted.add(ref)
        cluster.read(live, ref, str(obj.get("apiVersion") or ""))
    for entry in (app.get("status") or {}).get("resources") or []:
        ref = ObjectRef.from_status(entry)
        if ref not in wanted:
            version = str(entry.get("version") or "")
            where = _group_version(ref.group, version) if version else kube.preferred_version(ref.group)
            cluster.read(live, ref, where)
    found = compare.entries(app, prepared, live, cluster.schema, datetime.datetime.now(datetime.UTC))
    text, _ = show.diffs({"syncResult": {"resources": found}}, colour=out.tty)
    if text:
        out.line(text)
    for error in live.errors.values():
        print(error, file=sys.stderr)
    return compare.exit_code(found, live.errors)

"""``kubectl driftguard VERB``: parsing, and each verb as requests to kube-apiserver and what to
print. Exit codes: 0 done, 1 failed (or, for ``diff``, a difference; for ``wait``, a timeout),
2 bad usage."""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import yaml

from extension.api.tracking import BREAK_GLASS_REASON, BREAK_GLASS_UNTIL, RESOURCES_FINALIZER
from extension.cli import local, render
from extension.cli.args import parser
from extension.cli.client import API, TABLE, CLIError, Flags, Kube

TERMINAL = ("Succeeded", "Failed", "Error")


class Out:
    """stdout, with a live status line when it is a terminal and plain lines when it is not."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.tty = stream, stream.isatty()
        self.spinner = itertools.cycle("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
        self.last = ""

    def line(self, text: str = "") -> None:
        self.clear()
        print(text, file=self.stream, flush=True)

    def status(self, text: str, ticking: str = "") -> None:
        """A live line on a terminal (with ``ticking``, an elapsed time, say); into a pipe, one
        plain line each time ``text`` changes."""
        if self.tty:
            self.stream.write(f"\r\033[K{next(self.spinner)} {text}{ticking}")
            self.stream.flush()
        elif text != self.last:
            print(text, file=self.stream, flush=True)
        self.last = text

    def clear(self) -> None:
        if self.tty and self.last:
            self.stream.write("\r\033[K")
            self.last = ""


def print_object(obj: Any, output: str, out: Out) -> None:
    if output == "json":
        out.line(json.dumps(obj, indent=4))
    else:
        out.line(yaml.safe_dump(obj, sort_keys=False).rstrip())


# --- verbs --------------------------------------------------------------------------------------
def cmd_list(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    path = f"{API}/applications" if args.all_namespaces else kube.app_path()
    if args.output in ("json", "yaml"):
        print_object(kube.call("GET", path), args.output, out)
        return 0
    if args.output == "name":
        for app in kube.call("GET", path).get("items", []):
            out.line(f"application.gitops.driftguard.io/{app['metadata']['name']}")
        return 0
    text = render.server_table(
        kube.call("GET", path, accept=TABLE), wide=args.output == "wide", all_namespaces=args.all_namespaces
    )
    if text:
        out.line(text)
    else:
        where = "any namespace" if args.all_namespaces else f"{kube.namespace} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
    return 0


def cmd_get(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    if args.refresh:
        try:
            _sync(kube, args.name, {}, out, quiet=True, kind="diff", timeout=args.timeout)
        except CLIError as exc:
            print(f"warning: not refreshed: {exc}", file=sys.stderr)
    app = kube.app(args.name)
    if args.output in ("json", "yaml"):
        print_object(app, args.output, out)
        return 0
    out.line(render.summary(app))
    out.line()
    out.line(render.tree(app))
    return 0


def stage(app: dict[str, Any], operation: dict[str, Any]) -> str:
    """Where the recorded ``operation`` is: ``pending`` (the controller has not taken it up),
    ``running``, ``done``, or ``superseded`` (another operation replaced it before it ran, or its
    result before it was read). Operations are told apart by their whole record."""
    state = (app.get("status") or {}).get("operationState") or {}
    if state.get("operation") == operation:
        return "done" if state.get("phase") in TERMINAL else "running"
    return "pending" if app.get("operation") == operation else "superseded"


def _sync(
    kube: Kube,
    name: str,
    request: dict[str, Any],
    out: Out,
    *,
    quiet: bool = False,
    timeout: float = 600,
    kind: str = "sync",
) -> dict[str, Any]:
    """Records the operation, then follows it until it ends: its state."""
    recorded = kube.call("POST", f"{kube.app_path(name)}/{kind}", request)
    operation = recorded.get("operation") or {}
    started = time.monotonic()
    shown = 0  # the objects whose results are printed, as the controller reports them by step

    def progress(app: dict[str, Any]) -> None:
        nonlocal shown
        where = stage(app, operation)
        if quiet or where in ("done", "superseded"):
            return
        state = (app.get("status") or {}).get("operationState") or {}
        results = (state.get("syncResult") or {}).get("resources") or [] if where == "running" else []
        for entry in results[shown:]:
            out.line(render.result_line(entry))
        shown = max(shown, len(results))
        text = (
            f"{kind} of {kube.namespace}/{name}: waiting for the controller"
            if where == "pending"
            else f"{kind} of {kube.namespace}/{name}: {state.get('phase')}: {state.get('message', '')}"
        )
        total = len((app.get("status") or {}).get("resources") or [])
        bar = render.bar(shown, total) + " " if out.tty and where == "running" and total else ""
        out.status(bar + text, f" ({int(time.monotonic() - started)}s)")

    app = kube.until(name, lambda a: stage(a, operation) in ("done", "superseded"), timeout, progress)
    out.clear()
    if app is None:
        raise CLIError(
            f"error: timed out after {timeout:.0f}s waiting for the {kind} of {kube.namespace}/{name} "
            f"to end; it goes on: kubectl driftguard get {name} -n {kube.namespace}"
        )
    if stage(app, operation) == "superseded":
        raise CLIError(
            f"error: the {kind} of {kube.namespace}/{name} was replaced by a later operation before its "
            f"result could be read: kubectl driftguard get {name} -n {kube.namespace}"
        )
    return dict((app.get("status") or {}).get("operationState") or {})


def _resources(specs: Sequence[str]) -> list[dict[str, str]]:
    """``KIND/NAME`` or ``GROUP/KIND/NAME`` (Argo CD's ``--resource``), as the sync request takes them."""
    found = []
    for spec in specs:
        parts = spec.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise CLIError(
                f'error: --resource "{spec}": use KIND/NAME or GROUP/KIND/NAME, e.g. apps/Deployment/web'
            )
        group, kind, name = ["", *parts][-3:]
        found.append({"group": group, "kind": kind, "name": name})
    return found


def cmd_sync(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    request: dict[str, Any] = {}
    if args.revision:
        request["revision"] = args.revision
    if args.prune:
        request["prune"] = True
    if args.confirm_prune:
        request["confirmPrune"] = True
    if args.dry_run:
        request["dryRun"] = True
    if args.resource:
        request["resources"] = _resources(args.resource)
    if args.async_:
        kube.call("POST", f"{kube.app_path(args.name)}/sync", request)
        out.line(f"sync of {kube.namespace}/{args.name} requested")
        return 0
    state = _sync(kube, args.name, request, out, timeout=args.timeout)
    out.line(render.results(state))
    if args.dry_run:
        text, _ = render.diffs(state, colour=out.tty)
        if text:
            out.line(text)
    out.line(f"{state.get('phase')}: {state.get('message', '')}")
    return 0 if state.get("phase") == "Succeeded" else 1


def cmd_diff(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    if args.local:
        return local.cmd_diff_local(kube, args, out)
    if args.revision:  # another revision than the target: a dry-run sync's to compare
        request: dict[str, Any] = {"revision": args.revision, "dryRun": True, "prune": True}
        state = _sync(kube, args.name, request, out, quiet=True, timeout=args.timeout)
    else:
        state = _sync(kube, args.name, {}, out, quiet=True, timeout=args.timeout, kind="diff")
    if state.get("phase") != "Succeeded":
        raise CLIError(f"error: the comparison failed: {state.get('message', '')}")
    text, changed = render.diffs(state, colour=out.tty)
    if text:
        out.line(text)
    return 1 if changed else 0


def cmd_history(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    out.line(render.history(kube.app(args.name)))
    return 0


def cmd_rollback(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    state = _sync(kube, args.name, {"id": args.id}, out, kind="rollback", timeout=args.timeout)
    out.line(render.results(state))
    out.line(f"{state.get('phase')}: {state.get('message', '')}")
    if state.get("phase") == "Succeeded":
        out.line(
            f"Auto-sync of {kube.namespace}/{args.name} is paused, so that Git does not undo the rollback. "
            f"Lift the pause with a sync (kubectl driftguard sync {args.name} -n {kube.namespace}) "
            "or any change to the Application's spec."
        )
        return 0
    return 1


def cmd_wait(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    wanted = [
        w for w, on in (("sync", args.sync), ("health", args.health), ("operation", args.operation)) if on
    ]
    wanted = wanted or ["sync", "health", "operation"]

    def missing(app: dict[str, Any]) -> list[str]:
        status = app.get("status") or {}
        unmet = []
        if status.get("observedGeneration") != app["metadata"].get("generation"):
            unmet.append("the controller has not seen the latest spec yet")
        if "sync" in wanted and (status.get("sync") or {}).get("status") != "Synced":
            unmet.append(f"sync is {(status.get('sync') or {}).get('status', 'Unknown')}")
        if "health" in wanted and (status.get("health") or {}).get("status") != "Healthy":
            unmet.append(f"health is {(status.get('health') or {}).get('status', 'Unknown')}")
        phase = (status.get("operationState") or {}).get("phase")
        if "operation" in wanted and (app.get("operation") or phase == "Running"):
            unmet.append("an operation is running")
        return unmet

    def show(app: dict[str, Any]) -> None:
        out.status(f"waiting for {kube.namespace}/{args.name}: {'; '.join(missing(app))}")

    app = kube.until(args.name, lambda a: not missing(a), args.timeout, show)
    out.clear()
    if app is None:
        last = missing(kube.app(args.name))
        print(
            f"error: timed out after {args.timeout:.0f}s waiting for {kube.namespace}/{args.name}: "
            f"{'; '.join(last)}",
            file=sys.stderr,
        )
        return 1
    out.line(f"application.gitops.driftguard.io/{args.name} condition met")
    return 0


def cmd_create(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    spec: dict[str, Any] = {
        "project": args.project,
        "source": {
            "repoURL": args.repo,
            **({"path": args.path} if args.path else {}),
            **({"targetRevision": args.revision} if args.revision else {}),
        },
        "destination": {"namespace": args.dest_namespace or kube.namespace},
    }
    policy: dict[str, Any] = {}
    if args.sync_policy == "automated" or args.self_heal or args.auto_prune:
        policy["automated"] = {"prune": args.auto_prune, "selfHeal": args.self_heal}
    if args.sync_option:
        policy["syncOptions"] = args.sync_option
    if policy:
        spec["syncPolicy"] = policy
    body = {
        "apiVersion": API.removeprefix("/apis/"),
        "kind": "Application",
        "metadata": {"name": args.name, "namespace": kube.namespace, "finalizers": [RESOURCES_FINALIZER]},
        "spec": spec,
    }
    kube.call("POST", kube.app_path(), body, query={"fieldManager": "kubectl-driftguard"})
    out.line(f"application.gitops.driftguard.io/{args.name} created")
    return 0


def cmd_delete(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    app = kube.app(args.name)
    if args.cascade == "false" and RESOURCES_FINALIZER in (app["metadata"].get("finalizers") or []):
        kept = [f for f in app["metadata"]["finalizers"] if f != RESOURCES_FINALIZER]
        patch = {"metadata": {"finalizers": kept, "resourceVersion": app["metadata"]["resourceVersion"]}}
        kube.call("PATCH", kube.app_path(args.name), patch, content_type="application/merge-patch+json")
    kube.call("DELETE", kube.app_path(args.name))
    cascades = args.cascade == "true" and RESOURCES_FINALIZER in (app["metadata"].get("finalizers") or [])
    what = "what it deployed is deleted with it" if cascades else "what it deployed stays"
    out.line(f"application.gitops.driftguard.io/{args.name} deleted ({what})")
    return 0


def cmd_break_glass(
    kube: Kube, args: argparse.Namespace, out: Out, now: Callable[[], datetime.datetime]
) -> int:
    kind, sep, name = args.target.partition("/")
    if not sep or not kind or not name:
        raise CLIError(f'error: "{args.target}": use KIND/NAME, e.g. deployment/frontend')
    if not args.reason.strip():
        raise CLIError("error: --reason must say why (an incident, a ticket)")
    collection, namespaced, real_kind = kube.resource_for(kind)
    group_version, _, plural = collection.rpartition("/")
    path = (
        f"{group_version}/namespaces/{kube.namespace}/{plural}/{name}"
        if namespaced
        else f"{collection}/{name}"
    )
    until = (now() + datetime.timedelta(seconds=args.for_)).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"metadata": {"annotations": {BREAK_GLASS_REASON: args.reason, BREAK_GLASS_UNTIL: until}}}
    kube.call(
        "PATCH",
        path,
        patch,
        content_type="application/merge-patch+json",
        query={"fieldManager": "kubectl-driftguard"},
    )
    where = f"{real_kind} {kube.namespace + '/' if namespaced else ''}{name}"
    out.line(
        f"break-glass set on {where} until {until} (reason: {args.reason!r}).\n"
        "Until then, if you are in the Application's breakGlass.groups, your changes to the fields Git "
        "sets are allowed and recorded. When it expires, the controller restores Git's state and removes "
        "the annotations. If you are not in those groups, the guard grants nothing and the Application "
        "reports BreakGlassIgnored."
    )
    return 0


def cmd_drift(kube: Kube, args: argparse.Namespace, out: Out) -> int:
    out.line(render.drift(kube.app(args.name)))
    return 0


VERBS: dict[str, Callable[[Kube, argparse.Namespace, Out], int]] = {
    "list": cmd_list,
    "get": cmd_get,
    "sync": cmd_sync,
    "diff": cmd_diff,
    "history": cmd_history,
    "rollback": cmd_rollback,
    "wait": cmd_wait,
    "create": cmd_create,
    "delete": cmd_delete,
    "drift": cmd_drift,
    "break-glass": lambda k, a, o: cmd_break_glass(k, a, o, lambda: datetime.datetime.now(datetime.UTC)),
}


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.verb == "diff" and args.local and (args.revision or args.refresh):
        cli.error("diff: --local compares a working tree, so it takes neither --revision nor --refresh")
    out = Out(sys.stdout)
    try:
        flags = Flags(
            args.kubeconfig,
            args.context,
            args.namespace,
            args.as_user,
            (args.as_group,) if args.as_group else (),
        )
        return VERBS[args.verb](Kube(flags), args, out)
    except CLIError as exc:
        out.clear()
        print(exc, file=sys.stderr)
        return 2 if args.verb == "diff" else 1  # diff: 1 means a difference, as kubectl diff
    except KeyboardInterrupt:
        out.clear()
        return 130


if __name__ == "__main__":
    sys.exit(main())

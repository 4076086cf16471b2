"""The command line of ``kubectl driftguard``: verbs and flags, as kubectl and ``argocd app`` spell
them. Pure."""

from __future__ import annotations

import argparse
import re

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration(text: str) -> float:
    """Seconds of a Go-style duration such as ``30m``, ``1h30m`` or ``90s``."""
    found = _DURATION.match(text.strip())
    if not text.strip() or not found or not any(found.groups()):
        raise argparse.ArgumentTypeError(f'invalid duration "{text}": use e.g. 90s, 30m or 1h')
    h, m, s = (int(g or 0) for g in found.groups())
    return float(h * 3600 + m * 60 + s)


def parser() -> argparse.ArgumentParser:
    # kubectl's flags, before the verb or after it: the verb's copy has no defaults of its own, so
    # that it never overwrites what was given before the verb.
    common, late = (argparse.ArgumentParser(add_help=False) for _ in range(2))
    for flags, default in ((common, None), (late, argparse.SUPPRESS)):
        flags.add_argument("-n", "--namespace", default=default)
        flags.add_argument("--context", default=default)
        flags.add_argument("--kubeconfig", default=default)
        flags.add_argument(
            "--as", dest="as_user", metavar="USER", default=default, help="impersonate this user"
        )
        flags.add_argument("--as-group", dest="as_group", metavar="GROUP", default=default,
                           help="impersonate this group")  # fmt: skip
    root = argparse.ArgumentParser(
        prog="kubectl driftguard",
        description="Argo CD's everyday app verbs for driftguard Applications.",
        parents=[common],
    )
    verbs = root.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help: str, *, named: bool = True) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help, description=help, parents=[late])
        if named:
            sub.add_argument("name", metavar="NAME")
        return sub

    listing = verb("list", "List Applications, as kubectl get does.", named=False)
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    listing.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"])
    get = verb("get", "Show an Application: a summary, then each object it deployed with its drift.")
    get.add_argument("-o", "--output", choices=["json", "yaml"])
    get.add_argument("--refresh", action="store_true", help="compare with Git now (applications/diff)")
    get.add_argument("--timeout", type=duration, default=120.0)
    sync = verb("sync", "Sync now and follow the operation until it ends.")
    sync.add_argument("--revision")
    sync.add_argument("--prune", action="store_true")
    sync.add_argument("--confirm-prune", action="store_true", help="confirm a prune of more than half")
    sync.add_argument("--dry-run", action="store_true")
    sync.add_argument("--resource", action="append", metavar="[GROUP/]KIND/NAME")
    sync.add_argument("--async", dest="async_", action="store_true", help="return once requested")
    sync.add_argument("--timeout", type=duration, default=600.0)
    diff = verb("diff", "Show what a sync would change: exit 0 none, 1 some, 2 the compare failed.")
    diff.add_argument("--revision", help="another revision than the target (needs applications/sync)")
    diff.add_argument("--timeout", type=duration, default=300.0)
    diff.add_argument("--refresh", action="store_true", help="as argocd app diff: a diff always compares now")
    diff.add_argument("--local", metavar="DIR", help="compare this working tree, rendered here, not Git")
    verb("history", "The deployments of an Application.")
    rollback = verb("rollback", "Deploy a history entry again and pause auto-sync.")
    rollback.add_argument("id", type=int, metavar="ID")
    rollback.add_argument("--timeout", type=duration, default=600.0)
    wait = verb("wait", "Wait until the Application is synced, healthy, and runs no operation.")
    wait.add_argument("--sync", action="store_true")
    wait.add_argument("--health", action="store_true")
    wait.add_argument("--operation", action="store_true")
    wait.add_argument("--timeout", type=duration, default=300.0)
    create = verb("create", "Create an Application.")
    create.add_argument("--repo", required=True)
    create.add_argument("--path")
    create.add_argument("--revision")
    create.add_argument("--dest-namespace")
    create.add_argument("--project", default="default")
    create.add_argument("--sync-policy", choices=["automated", "none"], default="none")
    create.add_argument("--self-heal", action="store_true")
    create.add_argument("--auto-prune", action="store_true")
    create.add_argument("--sync-option", action="append", metavar="KEY=VALUE")
    delete = verb("delete", "Delete an Application.")
    delete.add_argument(
        "--cascade",
        choices=["true", "false"],
        default="true",
        help="false keeps what it deployed (its resources finalizer goes first)",
    )
    glass = verb("break-glass", "Allow your own changes to fields Git sets for a while.", named=False)
    glass.add_argument("target", metavar="KIND/NAME")
    glass.add_argument("--reason", required=True)
    glass.add_argument("--for", dest="for_", type=duration, required=True, metavar="DURATION")
    verb("drift", "The changes made outside Git: objects, fields, who and when.")
    return root

"""Benchmark of the controller on the local control plane, against its floor, in one run.

1. N Applications (default 1,000) of 4 objects each (ConfigMap, Secret, headless Service (the
   local service CIDR holds 254 addresses), ServiceAccount)
   from local repositories served by git daemon on loopback: time from creating them to all
   Synced, the controller's peak RSS (VmHWM), and meanwhile the CPU time of each local process
   and the requests kube-apiserver served.
2. The floor: ``kubectl apply --server-side`` of the same objects (other names) in one call.
3. Drift restore: a ConfigMap of a selfHeal Application changed by hand (guard off) until the
   controller has put Git's value back; p50/p95 over samples.
4. Push to applied: a commit, then either a signed webhook push or nothing (polling), until the
   new value is live; p50/p95.

Needs hack/install-local.sh's extension and controller (hack/bench/controller.sh brings them up).
Everything it creates lives in namespaces named dgbench-*, deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client, config

from hack.bench.projects import project
from tests.support.apps import Apps, push_webhook
from tests.support.cluster import LOCAL_DIR, running_pid
from tests.support.gitserver import GitServer

PREFIX = "dgbench"
PROJECT = "dgbench"


def objects(app: str) -> dict[str, str]:
    return {
        f"{app}/cm.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {app}}}\n"
        f"data: {{value: '1'}}\n",
        f"{app}/secret.yaml": (
            f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {app}}}\nstringData: {{k: v}}\n"
        ),
        f"{app}/svc.yaml": (
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {app}}}\n"
            f"spec: {{clusterIP: None, selector: {{app: {app}}}, ports: [{{port: 80}}]}}\n"
        ),
        f"{app}/sa.yaml": f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {app}}}\n",
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def kubectl(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(LOCAL_DIR / "bin" / "kubectl"), "--kubeconfig", str(LOCAL_DIR / "kubeconfig"), *args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, check=True)


def peak_rss_mib() -> float:
    pid = running_pid("driftguard-controller")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


PROCESSES = (
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "driftguard-extension",
    "driftguard-controller",
)


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system, with reaped children: gunicorn workers) of each local process."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))

    def used(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            return 0.0
        own = sum(int(f) for f in fields[11:15]) / tick
        return own + sum(used(child) for child in children.get(pid, []))

    return {name: used(pid) for name in PROCESSES if (pid := running_pid(name)) is not None}


def requests_served() -> Counter[str]:
    """kube-apiserver's apiserver_request_total, summed by verb and resource."""
    counts: Counter[str] = Counter()
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            resource = "/".join(filter(None, (labels.get("resource"), labels.get("subresource"))))
            key = f"{labels.get('verb')} {resource or labels.get('group', '')}"
            counts[key] += int(float(line.split()[-1]))
    return counts


def wait_gone(core: client.CoreV1Api, names: list[str], timeout: float = 600) -> None:
    """Delete what an earlier (interrupted) run left, and wait: 4,000 objects take a while to go."""
    for ns in core.list_namespace().items:
        if ns.metadata.name in names and not ns.metadata.deletion_timestamp:
            core.delete_namespace(ns.metadata.name)
    deadline = time.monotonic() + timeout
    while left := [n.metadata.name for n in core.list_namespace().items if n.metadata.name in names]:
        if time.monotonic() > deadline:
            raise SystemExit(f"namespaces of an earlier run still exist after {timeout:.0f}s: {left}")
        print(f"  waiting for {len(left)} namespaces of an earlier run to be deleted", flush=True)
        time.sleep(5)


def all_synced(custom: client.CustomObjectsApi, namespaces: list[str], want: int) -> int:
    synced = 0
    for ns in namespaces:
        listing = custom.list_namespaced_custom_object("gitops.driftguard.io", "v1alpha1", ns, "applications")
        synced += sum(
            1 for a in listing["items"] if (a.get("status") or {}).get("sync", {}).get("status") == "Synced"
        )
    return synced


def make_project(impersonate: bool) -> None:
    """The benchmark's project: its namespaces, anything namespaced there, and with
    ``impersonate`` a ServiceAccount deployer in each."""
    extra: dict[str, Any] = {}
    if impersonate:
        extra["destinationServiceAccounts"] = [
            {"server": "*", "namespace": f"{PREFIX}-*", "defaultServiceAccount": "deployer"}
        ]
    kubectl("apply", "-f", "-", input=json.dumps(project(PROJECT, [f"{PREFIX}-*"], [f"{PREFIX}-*"], **extra)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=20, help="Applications are spread over this many repos")
    parser.add_argument("--samples", type=int, default=20, help="drift-restore and webhook push samples")
    parser.add_argument("--poll-samples", type=int, default=3, help="push-to-applied samples by polling")
    parser.add_argument(
        "--impersonate", action="store_true",
        help="the project names a ServiceAccount (bound to edit) the controller acts as, in each namespace",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    api = config.new_client_from_config(config_file=str(LOCAL_DIR / "kubeconfig"))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    namespaces = [f"{PREFIX}-{r}" for r in range(args.repos)]
    floor_ns = f"{PREFIX}-floor"
    with tempfile.TemporaryDirectory() as tmp, GitServer(Path(tmp)) as git:
        try:
            wait_gone(core, [*namespaces, floor_ns])
            for ns in [*namespaces, floor_ns]:
                core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            make_project(args.impersonate)
            if args.impersonate:
                for ns in namespaces:
                    kubectl("create", "serviceaccount", "deployer", "-n", ns)
                    kubectl("create", "rolebinding", "deployer", "--clusterrole=edit",
                            f"--serviceaccount={ns}:deployer", "-n", ns)  # fmt: skip
            per_repo: dict[int, list[str]] = {}
            for n in range(args.apps):
                per_repo.setdefault(n % args.repos, []).append(f"app{n}")
            manifests: list[str] = []
            for r, names in per_repo.items():
                git.create_repo(f"repo{r}")
                files: dict[str, str] = {}
                for name in names:
                    files.update(objects(name))
                git.commit(f"repo{r}", files)
                manifests += [
                    text.replace("metadata: {name:", f"metadata: {{namespace: {floor_ns}, name:")
                    for text in files.values()
                ]
            print(
                f"{args.apps} Applications x 4 objects over {args.repos} repositories (git daemon), project "
                f"{PROJECT}{', impersonating a ServiceAccount per namespace' if args.impersonate else ''}"
            )

            cpu_before, requests_before = cpu_seconds(), requests_served()
            started = time.monotonic()
            for r, names in per_repo.items():
                apps = Apps(api, namespaces[r])
                for name in names:
                    apps.create(
                        name, {"repoURL": git.git_url(f"repo{r}"), "path": name},
                        syncPolicy={"automated": {"prune": True, "selfHeal": True}},
                        driftGuard={"mode": "off"}, project=PROJECT,
                    )  # fmt: skip
            created = time.monotonic() - started
            last_report = 0.0
            while (done := all_synced(custom, namespaces, args.apps)) < args.apps:
                if time.monotonic() - last_report > 10:
                    print(f"  {done}/{args.apps} Synced after {time.monotonic() - started:.0f}s", flush=True)
                    last_report = time.monotonic()
                if time.monotonic() - started > 1800:
                    raise SystemExit(f"only {done}/{args.apps} Synced after 30 minutes")
                time.sleep(1.0)
            sync_all = time.monotonic() - started
            rss = peak_rss_mib()
            cpu = {name: used - cpu_before.get(name, 0.0) for name, used in cpu_seconds().items()}
            served = requests_served() - requests_before
            print(f"all {args.apps} Synced: {sync_all:.1f}s (creating them took {created:.1f}s of that)")
            print("  CPU seconds meanwhile: " + ", ".join(f"{n} {s:.1f}" for n, s in cpu.items()))
            top = served.most_common(14)
            print("  kube-apiserver requests meanwhile: " + ", ".join(f"{k} {v}" for k, v in top))

            started = time.monotonic()
            kubectl(
                "apply",
                "--server-side",
                "--field-manager=bench-floor",
                "-f",
                "-",
                input="---\n".join(manifests),
            )
            floor = time.monotonic() - started

            restore: list[float] = []
            apps0 = Apps(api, namespaces[0])
            for name in per_repo[0][: args.samples]:
                core.patch_namespaced_config_map(name, namespaces[0], {"data": {"value": "by-hand"}})
                t0 = time.monotonic()
                while core.read_namespaced_config_map(name, namespaces[0]).data["value"] != "1":
                    if time.monotonic() - t0 > 60:
                        raise SystemExit(f"{name} not restored within 60s")
                    time.sleep(0.01)
                restore.append(time.monotonic() - t0)

            def push_to_applied(via_webhook: bool, value: str) -> float:
                name = per_repo[0][0]
                git.commit(
                    "repo0",
                    {f"{name}/cm.yaml": objects(name)[f"{name}/cm.yaml"].replace("'1'", f"'{value}'")},
                )
                t0 = time.monotonic()
                if via_webhook:
                    push_webhook(git.git_url("repo0"))
                while core.read_namespaced_config_map(name, namespaces[0]).data["value"] != value:
                    if time.monotonic() - t0 > 300:
                        raise SystemExit(f"push {value} not applied within 300s")
                    time.sleep(0.05)
                return time.monotonic() - t0

            webhook = [push_to_applied(True, f"w{n}") for n in range(args.samples)]
            polling = [push_to_applied(False, f"p{n}") for n in range(args.poll_samples)]
            del apps0
        finally:
            if not args.keep:
                kubectl("delete", "appprojects.gitops.driftguard.io", PROJECT, "-n", "driftguard-system",
                        "--ignore-not-found")  # fmt: skip
                for ns in [*namespaces, floor_ns]:
                    subprocess.run(
                        [str(LOCAL_DIR / "bin" / "kubectl"), "--kubeconfig", str(LOCAL_DIR / "kubeconfig"),
                         "delete", "namespace", ns, "--wait=false"], capture_output=True, check=False,
                    )  # fmt: skip

    def ms(values: list[float]) -> str:
        return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {percentile(values, 95) * 1000:.0f} ms"

    report: dict[str, Any] = {
        "apps": args.apps, "objects": args.apps * 4, "create_seconds": round(created, 1),
        "all_synced_seconds": round(sync_all, 1), "floor_seconds": round(floor, 1),
        "ratio_to_floor": round(sync_all / floor, 2), "controller_peak_rss_mib": round(rss, 1),
        "cpu_seconds_to_synced": {name: round(used, 1) for name, used in cpu.items()},
    }  # fmt: skip
    print(
        f"floor, kubectl apply --server-side of {args.apps * 4} objects: {floor:.1f}s; "
        f"ratio {sync_all / floor:.2f}x"
    )
    print(f"controller peak RSS: {rss:.0f} MiB")
    print(f"drift restore ({len(restore)} samples): {ms(restore)}")
    print(f"push to applied via webhook ({len(webhook)} samples): {ms(webhook)}")
    print(f"push to applied via polling ({len(polling)} samples): {ms(polling)}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()

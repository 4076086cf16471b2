"""Benchmark: driftguard's aggregated Applications against an equivalent CRD on the same apiserver.

Measures, interleaved in one run: GET of one object, LIST of N objects as a Table (what `kubectl
get` asks for), and the delay from a write to its watch event. Prints medians, p99 and ratios.

Beside GET, the two hops any GET of an aggregated resource stored through kube-apiserver makes,
each alone: kube-apiserver's proxy to the extension (the extension's discovery document, which
reads nothing) and the storage read (the ConfigMap behind the Application, read directly). A GET
without a resourceVersion must return the newest object, so it pays both: their sum is its floor.
Needs the local control plane with driftguard installed (hack/bench/api.sh does both).
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

from hack.bench.projects import project
from tests.support.oracle import oracle_crd

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "driftguard-bench"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
OURS = "/apis/gitops.driftguard.io/v1alpha1"
CRD = "/apis/bench.driftguard.io/v1alpha1"


def app(name: str, api_version: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"source": {"repoURL": "git://127.0.0.1:9/shop.git", "path": f"apps/{name}"},
                 "destination": {"namespace": "shop"}, "project": NAMESPACE},
    }  # fmt: skip


class Conn:
    """A keep-alive HTTPS connection to kube-apiserver as the admin of the local control plane."""

    def __init__(self) -> None:
        pki = REPO / ".local" / "pki"
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.conn = self.open()

    def open(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", 6443, context=self.context, timeout=30)

    def call(self, method: str, path: str, body: Any = None, accept: str = "application/json",
             content_type: str = "application/json") -> Any:  # fmt: skip
        data = json.dumps(body) if body is not None else None
        self.conn.request(method, path, body=data, headers={"Accept": accept, "Content-Type": content_type})
        response = self.conn.getresponse()
        raw = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def watch_delay(api: Conn, base: str, name: str, round_: int) -> float:
    """ms from sending a patch to its MODIFIED event arriving on an open watch, held by curl over
    HTTP/2 as kubectl's are; its response headers on stderr say when the watch is open."""
    item = f"{base}/namespaces/{NAMESPACE}/applications/{name}"
    pki = REPO / ".local" / "pki"
    url = (f"https://127.0.0.1:6443{base}/namespaces/{NAMESPACE}/applications?watch=true"
           f"&timeoutSeconds=20&fieldSelector=metadata.name%3D{name}")  # fmt: skip
    curl = subprocess.Popen(
        ["curl", "--http2", "-sSN", "-D", "/dev/stderr", "--cacert", str(pki / "ca.crt"),
         "--cert", str(pki / "admin.crt"), "--key", str(pki / "admin.key"), url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert curl.stdout is not None and curl.stderr is not None
    try:
        while curl.stderr.readline().strip():  # the response headers: the watch is open
            pass
        curl.stdout.readline()  # the ADDED event for the current object
        sent = time.perf_counter()
        api.call("PATCH", item, {"metadata": {"annotations": {"round": str(round_)}}},
                 content_type="application/merge-patch+json")  # fmt: skip
        while True:
            line = curl.stdout.readline()
            if not line:
                raise RuntimeError(f"the watch on {base} ended before the event arrived")
            if json.loads(line).get("type") == "MODIFIED":
                return (time.perf_counter() - sent) * 1000
    finally:
        curl.kill()
        curl.wait()


def server_side_apply(api: Conn, bases: dict[str, tuple[str, str]], items: int) -> None:
    """Server-side apply of ``items`` new Applications on each side, interleaved: first the applies
    that create them, then the same applies again, which change nothing. The objects are deleted
    afterwards, so that a later run measures creates again."""
    apply = "application/apply-patch+yaml"
    times: dict[str, dict[str, list[float]]] = {label: {"create": [], "noop": []} for label in bases}
    for phase in ("create", "noop"):
        for i in range(items):
            for label, (base, api_version) in bases.items():
                name = f"ssa-{i:04d}"
                path = f"{base}/namespaces/{NAMESPACE}/applications/{name}?fieldManager=bench"
                body = app(name, api_version, "Application")
                times[label][phase].append(
                    timed(lambda p=path, b=body: api.call("PATCH", p, b, content_type=apply))
                )
    header = ("server-side apply", "driftguard p50", "CRD p50", "ratio", "driftguard sum", "CRD sum", "ratio")
    print("\n{:<28}{:>16}{:>10}{:>8}{:>16}{:>10}{:>8}".format(*header))
    for phase, title in (("create", f"{items} applies that create"), ("noop", f"{items} no-op re-applies")):
        ours, theirs = times["driftguard"][phase], times["crd"][phase]
        p50o, p50c = statistics.median(ours), statistics.median(theirs)
        print(f"{title:<28}{p50o:>14.1f}ms{p50c:>8.1f}ms{p50o / p50c:>7.2f}x", end="")
        print(f"{sum(ours) / 1000:>15.1f}s{sum(theirs) / 1000:>9.1f}s{sum(ours) / sum(theirs):>7.2f}x")
    for base, _ in bases.values():
        for i in range(items):
            api.call("DELETE", f"{base}/namespaces/{NAMESPACE}/applications/ssa-{i:04d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--lists", type=int, default=20)
    parser.add_argument("--watches", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the namespace and the CRD afterwards")
    args = parser.parse_args()
    kube = config.new_client_from_config(config_file=str(REPO / ".local" / "kubeconfig"))
    core = client.CoreV1Api(kube)
    api = Conn()
    deadline = time.monotonic() + 600
    while (found := [ns for ns in core.list_namespace().items if ns.metadata.name == NAMESPACE]) and (
        found[0].metadata.deletion_timestamp
    ):
        # An earlier run's namespace, still being deleted: 2,000 objects take a while to go.
        if time.monotonic() > deadline:
            raise SystemExit(f"namespace {NAMESPACE} of an earlier run is still being deleted after 600s")
        print(f"  waiting for namespace {NAMESPACE} of an earlier run to be deleted", flush=True)
        time.sleep(5)
    if not found:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    ours = project(NAMESPACE, [NAMESPACE], ["shop"])
    try:
        api.call("POST", f"{OURS}/namespaces/driftguard-system/appprojects", ours)
    except RuntimeError as exc:
        if "AlreadyExists" not in str(exc):
            raise
    try:
        client.ApiextensionsV1Api(kube).create_custom_resource_definition(oracle_crd("bench.driftguard.io"))
    except client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    # The CRD's endpoint answers 404, then 429 while its storage initializes, for a few seconds.
    deadline = time.monotonic() + 60
    while True:
        try:
            api.call("GET", f"{CRD}/namespaces/{NAMESPACE}/applications?limit=1")
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    bases = {
        "driftguard": (OURS, "gitops.driftguard.io/v1alpha1"),
        "crd": (CRD, "bench.driftguard.io/v1alpha1"),
    }
    for label, (base, api_version) in bases.items():
        existing = len(api.call("GET", f"{base}/namespaces/{NAMESPACE}/applications")["items"])
        start = time.perf_counter()
        for i in range(existing, args.items):
            body = app(f"app-{i:04d}", api_version, "Application")
            api.call("POST", f"{base}/namespaces/{NAMESPACE}/applications", body)
        print(f"{label}: {args.items} objects ready ({args.items - existing} created in "
              f"{time.perf_counter() - start:.1f}s)", flush=True)  # fmt: skip

    results: dict[str, dict[str, list[float]]] = {
        label: {"get": [], "list": [], "watch": []} for label in bases
    }
    hops: dict[str, list[float]] = {"proxy": [], "storage": []}
    storage = f"/api/v1/namespaces/driftguard-system/configmaps/{NAMESPACE}.app-{{:04d}}"
    for i in range(args.gets):  # interleaved, so both see the same machine load
        for label, (base, _) in bases.items():
            path = f"{base}/namespaces/{NAMESPACE}/applications/app-{i % args.items:04d}"
            results[label]["get"].append(timed(lambda p=path: api.call("GET", p)))
        hops["proxy"].append(timed(lambda: api.call("GET", OURS)))
        hops["storage"].append(timed(lambda n=i % args.items: api.call("GET", storage.format(n))))
    for _ in range(args.lists):
        for label, (base, _) in bases.items():
            path = f"{base}/namespaces/{NAMESPACE}/applications"
            results[label]["list"].append(timed(lambda p=path: api.call("GET", p, accept=TABLE)))
    for i in range(args.watches):
        for label, (base, _) in bases.items():
            results[label]["watch"].append(watch_delay(api, base, "app-0000", i))

    header = ("measure", "driftguard p50", "CRD p50", "ratio", "driftguard p99", "CRD p99", "ratio")
    print("\n{:<28}{:>16}{:>10}{:>8}{:>16}{:>10}{:>8}".format(*header))
    names = {"get": "GET one", "list": f"LIST {args.items} as Table", "watch": "write -> watch event"}
    for key, title in names.items():
        ours, theirs = results["driftguard"][key], results["crd"][key]
        p50o, p50c = statistics.median(ours), statistics.median(theirs)
        p99o, p99c = percentile(ours, 0.99), percentile(theirs, 0.99)
        print(f"{title:<28}{p50o:>14.1f}ms{p50c:>8.1f}ms{p50o / p50c:>7.2f}x", end="")
        print(f"{p99o:>14.1f}ms{p99c:>8.1f}ms{p99o / p99c:>7.2f}x")
    crd_get = results["crd"]["get"]
    print("\nThe two hops of a GET, each alone:")
    for key, title in (("proxy", "proxy to the extension"), ("storage", "storage read")):
        p50, p99 = statistics.median(hops[key]), percentile(hops[key], 0.99)
        print(f"{title:<28}{p50:>14.1f}ms{'':>10}{p50 / statistics.median(crd_get):>7.2f}x", end="")
        print(f"{p99:>14.1f}ms{'':>10}{p99 / percentile(crd_get, 0.99):>7.2f}x")
    floor = [a + b for a, b in zip(hops["proxy"], hops["storage"], strict=True)]
    p50, p99 = statistics.median(floor), percentile(floor, 0.99)
    print(
        f"{'their sum, a GET floor':<28}{p50:>14.1f}ms{'':>10}{p50 / statistics.median(crd_get):>7.2f}x",
        end="",
    )
    print(f"{p99:>14.1f}ms{'':>10}{p99 / percentile(crd_get, 0.99):>7.2f}x")
    print(f"\n(samples: {args.gets} GETs, {args.lists} LISTs, {args.watches} watch rounds per side)")
    server_side_apply(api, bases, args.items)
    if not args.keep:
        # The CRD's plural is `applications` too: left behind, it would take bare
        # `kubectl get applications` away from driftguard.
        client.ApiextensionsV1Api(kube).delete_custom_resource_definition("applications.bench.driftguard.io")
        core.delete_namespace(NAMESPACE)
        print(f"removed the CRD and the namespace {NAMESPACE} (--keep keeps them)")


if __name__ == "__main__":
    main()

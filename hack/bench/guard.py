"""Benchmark: what the drift guard adds to an update, against no admission check and against an
in-process ValidatingAdmissionPolicy with a coarse equivalent rule, on the same apiserver.

Part 1, end to end (kubectl's path: a merge-patch through kube-apiserver over one keep-alive
connection as the admin). Five ConfigMaps in one namespace, updated in interleaved rounds so all
five see the same machine load:

  (a) none:  no admission check matches it;
  (b) vap:   a ValidatingAdmissionPolicy denies changes to `data` (a coarse stand-in for "the
             fields Git owns": CEL cannot read managedFields ownership per field);
  (c) guard: managed by an Application (managed label, tracking id, applied with server-side apply
             as the controller, listed in the inventory): the guard's mutating webhook, which
             decides UPDATEs, is called.
  (d) floor: a mutating webhook registered as the guard's (same selectors and matchConditions)
             but served by hack/bench/floor_webhook.py, a bare WSGI callable that allows
             everything, under gunicorn with the extension's worker model: what any Python
             webhook under gunicorn costs, so that (c) - (d) is the guard's own work.
  (e) go:    the same registration, served by hack/bench/floor_webhook.go, a Go handler that
             allows everything (as a controller-runtime webhook would, HTTP/2 included): what a
             round trip from kube-apiserver to any webhook process costs, in any language.

Each round sends an allowed update (an annotation nobody owns) and a denied one (data.color, which
Git owns; under (a), (d) and (e) it is simply stored). Reports p50/p99 per case and what each adds
over (a).
The allowed update sets the annotation to the value it already has: kube-apiserver admits it in
full (every webhook and policy is called) and then finds nothing to store. A real change would wake
the controller, if one runs, on every round of (c) alone (its watch on managed objects), and its
reconciles (a git fetch, a status write) would load the machine for all the cases.

Part 2, the handler alone: AdmissionReviews for (c) (half denied, half allowed) sent straight to
https://127.0.0.1:<port>/mutate (where UPDATEs are decided) at a fixed rate over keep-alive
connections; reports p50/p99 of the round trip and every error.

Needs the local control plane with driftguard installed (hack/bench/guard.sh does both).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import http.client
import json
import os
import random
import shutil
import socket
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from certs import pki
from hack.bench.api import REPO, Conn, percentile
from hack.bench.projects import project

NAMESPACE = "driftguard-bench-guard"
CONTROLLER = "system:serviceaccount:driftguard-system:driftguard-controller"
LABEL = "gitops.driftguard.io/managed"
TRACKING = "gitops.driftguard.io/tracking-id"
APP = "applications.gitops.driftguard.io"
POLICY = "driftguard-bench-coarse"
MERGE = "application/merge-patch+json"
# The coarse rule: nobody but the controller changes data (CEL cannot see per-field ownership).
RULE = f"request.userInfo.username == '{CONTROLLER}' || object.data == oldObject.data"
CASES = ("none", "vap", "guard", "floor", "go")
STORED = ("none", "floor", "go")  # the cases where nothing denies the change to data
FLOOR_PORT = 9444
FLOOR_LABEL = "bench.driftguard.io/floor"
GO_PORT = 9445
GO_LABEL = "bench.driftguard.io/floor-go"
DENIED = (403, 422)  # the guard answers Forbidden; a ValidatingAdmissionPolicy, Invalid


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    local = REPO / ".local"
    cmd = [str(local / "bin" / "kubectl"), "--kubeconfig", str(local / "kubeconfig"), *args]
    result = subprocess.run(cmd, input=input, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result


def wait(probe: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.25)


def configmap(name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels, "annotations": annotations},
        "data": {"color": "blue", "size": "L"},
    }  # fmt: skip


def policy() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": POLICY},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "objectSelector": {"matchLabels": {"bench.driftguard.io/vap": "true"}},
                },
                "validations": [
                    {
                        "expression": RULE,
                        "message": "data is set by Git. Change it in Git.",
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": POLICY},
            "spec": {
                "policyName": POLICY,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
                },
            },
        },
    ]


@contextlib.contextmanager
def floor_webhooks(directory: Path) -> Iterator[None]:
    """hack/bench/floor_webhook.py under gunicorn and hack/bench/floor_webhook.go, on 127.0.0.1,
    each registered like the guard's mutating webhook for the ConfigMap with its label."""
    ca = pki.new_ca("driftguard-bench-floor")
    leaf = pki.new_serving_cert(ca, "127.0.0.1", ip_addresses=["127.0.0.1"])
    cert, key, binary = directory / "tls.crt", directory / "tls.key", directory / "floor-webhook"
    cert.write_bytes(leaf.cert_pem)
    key.write_bytes(leaf.key_pem)
    if shutil.which("go") is None:
        raise SystemExit("the Go toolchain is needed to build hack/bench/floor_webhook.go (case e)")
    subprocess.run(
        ["go", "build", "-o", str(binary), str(REPO / "hack" / "bench" / "floor_webhook.go")],
        cwd=directory, env={**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}, check=True,
    )  # fmt: skip
    gunicorn = REPO / ".local" / "venv" / "bin" / "gunicorn"
    commands = (
        [str(gunicorn), "-k", "gthread", "-w", "1", "--threads", "8", "--keep-alive", "75",
         "--certfile", str(cert), "--keyfile", str(key), "-b", f"127.0.0.1:{FLOOR_PORT}",
         "hack.bench.floor_webhook:app"],
        [str(binary), f"127.0.0.1:{GO_PORT}", str(cert), str(key)],
    )  # fmt: skip
    with contextlib.ExitStack() as servers:
        for command, port in zip(commands, (FLOOR_PORT, GO_PORT), strict=True):
            server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers.callback(server.wait, timeout=30)
            servers.callback(server.terminate)
            wait(
                lambda s=server, p=port: serving(s, p, ca.cert_pem), f"the floor webhook on 127.0.0.1:{port}"
            )
        guard = json.loads(
            kubectl("get", "mutatingwebhookconfiguration", "driftguard-guard", "-o", "json").stdout
        )
        webhooks = []
        for name, port, label in (("floor", FLOOR_PORT, FLOOR_LABEL), ("go", GO_PORT, GO_LABEL)):
            webhook = copy.deepcopy(guard["webhooks"][0])
            webhook.update(
                name=f"{name}.bench.driftguard.io",
                clientConfig={"url": f"https://127.0.0.1:{port}/mutate",
                              "caBundle": base64.b64encode(ca.cert_pem).decode()},
                objectSelector={"matchLabels": {label: "true"}},
            )  # fmt: skip
            webhooks.append(webhook)
        config = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                  "metadata": {"name": POLICY}, "webhooks": webhooks}  # fmt: skip
        kubectl("apply", "-f", "-", input=json.dumps(config))
        yield


def serving(server: subprocess.Popen[bytes], port: int, ca_pem: bytes) -> bool:
    """Whether ``server`` answers TLS on ``port`` with a certificate of the bench's CA; an error if
    it exited or another server holds the port (it would be measured instead)."""
    if server.poll() is not None:
        raise RuntimeError(f"the floor webhook for 127.0.0.1:{port} exited: is the port taken?")
    context = ssl.create_default_context(cadata=ca_pem.decode())
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
            context.wrap_socket(raw, server_hostname="127.0.0.1").close()
    except ssl.SSLCertVerificationError as exc:
        raise RuntimeError(f"another server holds 127.0.0.1:{port}: {exc}") from exc
    except OSError:
        return False
    return True


def set_up() -> None:
    def namespace_active() -> bool:  # a previous run's namespace may still be terminating
        kubectl("create", "namespace", NAMESPACE, check=False)
        phase = kubectl("get", "namespace", NAMESPACE, "-o", "jsonpath={.status.phase}", check=False).stdout
        return phase == "Active"

    wait(namespace_active, f"namespace {NAMESPACE}", timeout=120)
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": policy()}))
    app = {
        "apiVersion": "gitops.driftguard.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": NAMESPACE},
        "spec": {"source": {"repoURL": "git://127.0.0.1:9/shop.git", "path": "apps/shop"},
                 "destination": {"namespace": NAMESPACE}, "driftGuard": {"mode": "enforce"},
                 "project": NAMESPACE},
    }  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(project(NAMESPACE, [NAMESPACE], [NAMESPACE])))
    kubectl("apply", "-f", "-", input=json.dumps(app))
    inventory = [{"group": "", "kind": "ConfigMap", "namespace": NAMESPACE, "name": "guard", "version": "v1"}]
    status = {
        "status": {"sync": {"status": "Synced", "revision": "3f2a9c1" + "0" * 33}, "resources": inventory}
    }

    def status_of() -> dict[str, Any]:
        got: dict[str, Any] = json.loads(kubectl("get", APP, "shop", "-n", NAMESPACE, "-o", "json").stdout)
        return got.get("status") or {}

    # The real controller, if it runs, reconciles shop at once (and fails to fetch): let its first
    # status write pass, or it could overwrite the inventory written meanwhile.
    with contextlib.suppress(RuntimeError):
        wait(lambda: "reconciledAt" in status_of(), "the controller's first reconcile", timeout=5)
    kubectl(
        "patch",
        APP,
        "shop",
        "-n",
        NAMESPACE,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    objects = [
        configmap("none", {}, {}),
        configmap("vap", {"bench.driftguard.io/vap": "true"}, {}),
        configmap("guard", {LABEL: "true"}, {TRACKING: f"{NAMESPACE}/shop:/ConfigMap:{NAMESPACE}/guard"}),
        configmap("floor", {FLOOR_LABEL: "true"}, {}),
        configmap("go", {GO_LABEL: "true"}, {}),
    ]
    ssa = ("apply", "--server-side", "--force-conflicts", "--field-manager=driftguard-controller")
    kubectl(
        *ssa,
        "--as",
        CONTROLLER,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )

    def denied(name: str) -> bool:
        if name == "guard" and status_of().get("resources") != inventory:
            kubectl("patch", APP, "shop", "-n", NAMESPACE, "--subresource=status", "--type=merge",
                    "-p", json.dumps(status))  # fmt: skip
        probe = kubectl("patch", "configmap", name, "-n", NAMESPACE, "--dry-run=server", "--type=merge",
                        "-p", '{"data":{"color":"probe"}}', check=False)  # fmt: skip
        return probe.returncode != 0

    wait(lambda: denied("vap"), "the ValidatingAdmissionPolicy to deny")
    wait(lambda: denied("guard"), "the drift guard to deny")


def tear_down() -> None:
    kubectl(
        "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", POLICY, "--ignore-not-found"
    )
    kubectl("delete", "mutatingwebhookconfiguration", POLICY, "--ignore-not-found")
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", "--ignore-not-found")


def timed_patch(api: Conn, name: str, patch: dict[str, Any], expect: tuple[int, ...]) -> float:
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}"
    body = json.dumps(patch)
    start = time.perf_counter()
    api.conn.request("PATCH", path, body=body, headers={"Content-Type": MERGE, "Accept": "application/json"})
    response = api.conn.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status not in expect:
        raise RuntimeError(f"PATCH {name}: expected {expect}, got {response.status}: {data[:300]!r}")
    return elapsed


def end_to_end(rounds: int, start: int = 0) -> dict[str, dict[str, list[float]]]:
    """Each round updates each ConfigMap twice, in a shuffled order: an allowed write to (c) sets
    off the real controller's reconcile of shop (if it runs), and no case should always come
    right after it."""
    api = Conn()
    shuffle = random.Random(start)  # noqa: S311 (an order, not a secret)
    results: dict[str, dict[str, list[float]]] = {c: {"allowed": [], "denied": []} for c in CASES}
    for i in range(start, start + rounds):
        steps = [(case, kind) for case in CASES for kind in ("allowed", "denied")]
        shuffle.shuffle(steps)
        for case, kind in steps:
            if kind == "allowed":
                # The same value every time: admitted in full (admission runs before kube-apiserver
                # sees that nothing changed), yet no write and no watch event, so a controller
                # running on the cluster is not woken by (c) alone (see the module's docstring).
                patch: dict[str, Any] = {"metadata": {"annotations": {"bench/allowed": "same"}}}
                expect: tuple[int, ...] = (200,)
            else:
                # Denied under (b) and (c), so blue stays and red is a change every time; stored
                # under (a), (d) and (e), so there it alternates to stay a change.
                stored = case in STORED
                patch = {"data": {"color": "red" if not stored or i % 2 == 0 else "blue"}}
                expect = (200,) if stored else DENIED
            results[case][kind].append(timed_patch(api, case, patch, expect))
    return results


# --- the handler alone ---------------------------------------------------------------------------
def reviews() -> list[bytes]:
    """A denied and an allowed AdmissionReview for the managed ConfigMap, as kube-apiserver sends
    them (its managedFields read from the live object)."""
    live = json.loads(
        kubectl("get", "configmap", "guard", "-n", NAMESPACE, "-o", "json", "--show-managed-fields").stdout
    )
    out = []
    for change in ({"data": {**live["data"], "color": "red"}}, {"metadata": {"annotations": {"note": "x"}}}):
        new = copy.deepcopy(live)
        if "data" in change:
            new["data"] = change["data"]
        else:
            new["metadata"]["annotations"] = {**new["metadata"].get("annotations", {}), "note": "x"}
        request = {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "guard", "namespace": NAMESPACE, "operation": "UPDATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": new, "oldObject": live, "dryRun": False,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl"},
        }  # fmt: skip
        out.append(
            json.dumps(
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
            ).encode()
        )
    return out


def handler_load(
    port: int, rate: float, seconds: float, connections: int
) -> tuple[list[float], list[str], int]:
    context = ssl.create_default_context(cafile=str(REPO / ".local" / "extension" / "tls" / "ca.crt"))
    bodies = reviews()
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.perf_counter() + 0.5

    def worker() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            due = start + n / rate  # open loop: each request at its own time, late or not
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            body = bodies[n % 2]
            sent = time.perf_counter()
            try:
                conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = json.loads(response.read())
                elapsed = (time.perf_counter() - sent) * 1000
                allowed = answer["response"]["allowed"]
                ok = response.status == 200 and allowed is (n % 2 == 1)
            except Exception as exc:  # counted, and the connection renewed
                ok, elapsed, answer = False, 0.0, repr(exc)
                conn.close()
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors.append(str(answer)[:200])
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, total


def row(label: str, values: list[float]) -> str:
    return f"{label:<34}{statistics.median(values):>9.2f}ms{percentile(values, 0.99):>9.2f}ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=500, help="end-to-end rounds (each: 6 updates)")
    parser.add_argument("--rate", type=float, default=300.0, help="handler requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="handler load duration")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections for the load")
    parser.add_argument("--port", type=int, default=8443, help="the extension's port")
    parser.add_argument("--keep", action="store_true", help="keep the namespace and the policy afterwards")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, floor_webhooks(Path(tmp)):
        set_up()
        try:
            end_to_end(20)  # warm connections and caches
            e2e = end_to_end(args.rounds, start=20)
            latencies, errors, total = handler_load(args.port, args.rate, args.seconds, args.connections)
        finally:
            if not args.keep:
                tear_down()

    print(
        f"\nEnd to end, {args.rounds} interleaved rounds (merge-patch of a ConfigMap through kube-apiserver):"
    )
    print(f"{'case':<34}{'p50':>11}{'p99':>11}")
    for kind in ("allowed", "denied"):
        for case in CASES:
            print(row(f"{kind:<8}({case})", e2e[case][kind]))
    print("\nAdded over (a), p50 / p99:")
    print(f"{'':<34}{'allowed':>19}{'denied':>19}")
    added: dict[str, dict[str, tuple[float, float]]] = {}
    for kind in ("allowed", "denied"):
        base50, base99 = statistics.median(e2e["none"][kind]), percentile(e2e["none"][kind], 0.99)
        added[kind] = {
            c: (statistics.median(e2e[c][kind]) - base50, percentile(e2e[c][kind], 0.99) - base99)
            for c in CASES
        }
    titles = {"vap": "(b) ValidatingAdmissionPolicy", "guard": "(c) drift guard",
              "floor": "(d) bare Python webhook, gunicorn", "go": "(e) bare Go webhook"}  # fmt: skip
    for case, title in titles.items():
        cells = "".join(
            f"{added[k][case][0]:>9.2f} /{added[k][case][1]:>6.2f}ms" for k in ("allowed", "denied")
        )
        print(f"{title:<34}{cells}")

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b > 0.05 else "n/a (b adds under 0.05 ms)"

    allowed = added["allowed"]
    print(f"(c) against (b), allowed: p50 {ratio(allowed['guard'][0], allowed['vap'][0])}, "
          f"p99 {ratio(allowed['guard'][1], allowed['vap'][1])}; "
          f"(e) against (b), p50 {ratio(allowed['go'][0], allowed['vap'][0])}")  # fmt: skip
    own = {k: added[k]["guard"][0] - added[k]["floor"][0] for k in added}
    print(f"(c) - (d), the guard's work, p50: allowed {own['allowed']:.2f}ms, denied {own['denied']:.2f}ms")
    achieved = total / args.seconds
    print(f"\nHandler alone: {total} AdmissionReviews at {achieved:.0f}/s for {args.seconds:.0f}s over "
          f"{args.connections} keep-alive connections to /mutate:")  # fmt: skip
    if latencies:
        print(row("round trip (half denied)", latencies))
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


if __name__ == "__main__":
    main()

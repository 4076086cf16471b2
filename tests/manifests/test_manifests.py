"""The install manifests: what ``manifests/`` renders to, what ``manifests/local/`` changes, and
that kube-apiserver accepts both (server-side dry run only: these tests create nothing).

Rendering uses the pinned kubectl's ``kustomize``, which the ``kubectl`` fixture provides, so
every test that renders is a cluster test.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

from extension.api import seals
from extension.api.tracking import IMPERSONATED_BY
from tests.support.cluster import REPO_ROOT

Kubectl = Callable[..., CompletedProcess[str]]
Doc = dict[str, Any]

MANIFESTS = REPO_ROOT / "manifests"
NAMESPACE = "driftguard-system"
GROUP = "gitops.driftguard.io"
EXTENSION_SA = {"kind": "ServiceAccount", "name": "driftguard-extension", "namespace": NAMESPACE}
CONTROLLER_SA = {"kind": "ServiceAccount", "name": "driftguard-controller", "namespace": NAMESPACE}
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
AGGREGATED = {
    "view": "driftguard-view",
    "edit": "driftguard-edit",
    "admin": "driftguard-admin",
}

cluster = pytest.mark.cluster


# --- rendering and lookups -------------------------------------------------------------------
def render(kubectl: Kubectl, directory: Path) -> list[Doc]:
    out = kubectl("kustomize", str(directory)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def base(kubectl: Kubectl) -> list[Doc]:
    return render(kubectl, MANIFESTS)


@pytest.fixture(scope="module")
def local(kubectl: Kubectl) -> list[Doc]:
    return render(kubectl, MANIFESTS / "local")


@pytest.fixture(scope="module")
def local_node(kubectl: Kubectl) -> list[Doc]:
    return render(kubectl, MANIFESTS / "local-node")


@pytest.fixture(params=["base", "local", "local_node"])
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    docs: list[Doc] = request.getfixturevalue(request.param)
    return docs


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def kinds(docs: list[Doc], *wanted: str) -> list[Doc]:
    return [d for d in docs if d["kind"] in wanted]


def containers(docs: list[Doc]) -> Iterator[tuple[str, Doc, Doc]]:
    """Every (deployment name, pod spec, container), init containers included."""
    for deployment in kinds(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield deployment["metadata"]["name"], pod, container


def keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from keys(item)


# --- RBAC evaluation, wildcards included -----------------------------------------------------
def allows(role: Doc, group: str, resource: str, verb: str) -> bool:
    """Whether any rule of ``role`` grants ``verb`` on ``group``/``resource`` (any name)."""
    for rule in role.get("rules") or []:
        groups, resources, verbs = rule.get("apiGroups", []), rule.get("resources", []), rule["verbs"]
        parent = resource.split("/")[0]
        resource_match = (
            "*" in resources or resource in resources or (resource != parent and f"{parent}/*" in resources)
        )
        if ("*" in groups or group in groups) and resource_match and ("*" in verbs or verb in verbs):
            return True
    return False


def roles_bound_to(docs: list[Doc], subject: dict[str, str]) -> list[Doc]:
    """The rendered Roles and ClusterRoles that a binding in ``docs`` grants ``subject``."""
    bound = []
    for binding in kinds(docs, "RoleBinding", "ClusterRoleBinding"):
        if any(s == subject for s in binding.get("subjects", [])):
            ref = binding["roleRef"]
            bound += [
                d
                for d in kinds(docs, ref["kind"])
                if d["metadata"]["name"] == ref["name"]
                and d["metadata"].get("namespace") in (None, binding["metadata"].get("namespace"))
            ]
    return bound


def subjects_of(docs: list[Doc]) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    for binding in kinds(docs, "RoleBinding", "ClusterRoleBinding"):
        seen += [s for s in binding.get("subjects", []) if s not in seen]
    return seen


# --- the base ----------------------------------------------------------------------------------
@cluster
def test_no_manifest_skips_tls_verification_anywhere(rendered: list[Doc]) -> None:
    assert "insecureSkipTLSVerify" not in set(keys(rendered))
    for path in MANIFESTS.rglob("*.yaml"):
        assert "insecureSkipTLSVerify: true" not in path.read_text(), path


@cluster
def test_the_apiservice_points_at_the_extension_service_and_leaves_ca_bundle_to_the_extension(
    base: list[Doc],
) -> None:
    spec = find(base, "APIService", f"v1alpha1.{GROUP}")["spec"]
    assert spec["group"] == GROUP
    assert spec["version"] == "v1alpha1"
    assert spec["service"] == {"name": "driftguard-extension", "namespace": NAMESPACE, "port": 443}
    assert (spec["groupPriorityMinimum"], spec["versionPriority"]) == (1000, 15)
    assert "caBundle" not in spec, "the extension injects caBundle at start; a static one goes stale"


@cluster
def test_every_namespaced_object_lives_in_driftguard_system_except_the_authentication_reader_binding(
    base: list[Doc],
) -> None:
    elsewhere = {
        f"{d['kind']}/{d['metadata']['name']}": d["metadata"]["namespace"]
        for d in base
        if d["metadata"].get("namespace") not in (None, NAMESPACE)
    }
    assert elsewhere == {"RoleBinding/driftguard-extension-authentication-reader": "kube-system"}
    assert find(base, "RoleBinding", "driftguard-extension-authentication-reader")["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "extension-apiserver-authentication-reader",
    }


@cluster
def test_every_object_is_labelled_part_of_driftguard_but_no_selector_is(base: list[Doc]) -> None:
    for doc in base:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "driftguard", doc["kind"]
    for deployment in kinds(base, "Deployment"):
        assert "app.kubernetes.io/part-of" not in deployment["spec"]["selector"]["matchLabels"]
    assert (
        "app.kubernetes.io/part-of" not in find(base, "Service", "driftguard-extension")["spec"]["selector"]
    )


@cluster
def test_every_container_runs_under_the_restricted_security_context(base: list[Doc]) -> None:
    seen = set()
    for name, pod, container in containers(base):
        seen.add(name)
        pod_context, context = pod.get("securityContext", {}), container.get("securityContext", {})
        where = f"{name}/{container['name']}"
        assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, where
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile"))
        assert seccomp == {"type": "RuntimeDefault"}, where
        assert context.get("allowPrivilegeEscalation") is False, where
        assert context.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not context.get("capabilities", {}).get("add"), where
        assert context.get("readOnlyRootFilesystem") is True, where
        assert not context.get("privileged"), where
        tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1, f"{where} needs a writable /tmp beside its read-only root"
        volume = [v for v in pod["volumes"] if v["name"] == tmp[0]["name"]]
        assert len(volume) == 1 and "emptyDir" in volume[0], where
    assert seen == {"driftguard-extension", "driftguard-controller"}


@cluster
def test_every_container_has_resource_requests_limits_and_both_probes(base: list[Doc]) -> None:
    for name, _, container in containers(base):
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{name}: {kind}"
        assert "readinessProbe" in container, name
        assert "livenessProbe" in container, name


@cluster
def test_the_extension_serves_https_on_8443_twice_over_spread_across_nodes_with_a_disruption_budget(
    base: list[Doc],
) -> None:
    deployment = find(base, "Deployment", "driftguard-extension")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == "driftguard-extension"
    assert container["image"] == "ghcr.io/driftguard/driftguard:0.1.0"
    assert container["command"] == [
        "gunicorn",
        "--config",
        "python:extension.gunicorn_conf",
        "extension.wsgi:app",
    ]
    assert {"name": "https", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    assert {
        "name": "DRIFTGUARD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    } in container["env"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == (path, "https", "HTTPS"), probe
    spread = pod.get("topologySpreadConstraints", [])
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    assert any(c["topologyKey"] == "kubernetes.io/hostname" for c in spread) or anti

    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "driftguard-extension"}
    service = find(base, "Service", "driftguard-extension")["spec"]
    assert service["type"] == "ClusterIP"
    assert service["selector"] == selector
    assert service["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    budget = find(base, "PodDisruptionBudget", "driftguard-extension")["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"]["matchLabels"] == selector


@cluster
def test_the_controller_runs_one_replica_with_http_probes_on_8081(base: list[Doc]) -> None:
    deployment = find(base, "Deployment", "driftguard-controller")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 1
    assert pod["serviceAccountName"] == "driftguard-controller"
    assert container["command"] == ["python", "-m", "controller"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], ports[get["port"]], get["scheme"]) == (path, 8081, "HTTP"), probe


# --- the drift guard's webhooks ------------------------------------------------------------------
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def webhooks(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
    found = {}
    for kind in WEBHOOK_KINDS:
        for webhook in find(docs, kind, "driftguard-guard")["webhooks"]:
            found[kind.removesuffix("WebhookConfiguration"), webhook["name"]] = webhook
    return found


@cluster
def test_the_guard_decides_updates_in_one_mutating_call_and_creates_deletes_and_scales_by_validation(
    base: list[Doc],
) -> None:
    hooks = webhooks(base)
    assert set(hooks) == {
        ("Mutating", "guard.gitops.driftguard.io"),
        ("Validating", "guard.gitops.driftguard.io"),
        ("Validating", "scale.guard.gitops.driftguard.io"),
    }
    for name, hook in hooks.items():
        assert hook["clientConfig"]["service"]["name"] == "driftguard-extension", name
        assert hook["clientConfig"]["service"]["namespace"] == NAMESPACE, name
        assert "caBundle" not in hook["clientConfig"], "the extension injects it; a static one goes stale"
        assert (hook["sideEffects"], hook["matchPolicy"], hook["admissionReviewVersions"]) == (
            "None", "Equivalent", ["v1"],
        )  # fmt: skip
        assert hook["timeoutSeconds"] <= 5, name
        selector = hook["namespaceSelector"]["matchExpressions"]
        assert selector == [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
             "values": ["kube-system", "kube-node-lease", NAMESPACE]}
        ], name  # fmt: skip
        (rule,) = hook["rules"]
        assert (rule["apiGroups"], rule["apiVersions"]) == (["*"], ["*"]), name
        assert not any(r.endswith("/status") for r in rule["resources"]), name
        itself, impersonating = hook["matchConditions"]
        assert itself["expression"] == (
            "request.userInfo.username != 'system:serviceaccount:driftguard-system:driftguard-controller'"
        ), "the controller's identity, as extension/settings.py defaults it"
        assert impersonating["expression"] == (
            f"!has(request.userInfo.extra) || !('{IMPERSONATED_BY}' in request.userInfo.extra) || "
            f"!('driftguard-controller' in request.userInfo.extra['{IMPERSONATED_BY}'])"
        ), "the controller acting as a project's ServiceAccount"
    main, update = (
        hooks["Validating", "guard.gitops.driftguard.io"],
        hooks["Mutating", "guard.gitops.driftguard.io"],
    )
    operations = main["rules"][0]["operations"] + update["rules"][0]["operations"]
    assert sorted(operations) == ["CREATE", "DELETE", "UPDATE"]
    for hook, path in ((main, "/validate"), (update, "/mutate")):
        assert hook["clientConfig"]["service"]["path"] == path
        assert hook["rules"][0]["resources"] == ["*"]
        assert hook["objectSelector"] == {"matchLabels": {"gitops.driftguard.io/managed": "true"}}
        assert hook["failurePolicy"] == "Fail"
    assert update["reinvocationPolicy"] == "IfNeeded", "it must judge what a later mutating webhook changed"
    scale = hooks["Validating", "scale.guard.gitops.driftguard.io"]
    assert scale["rules"][0]["resources"] == ["*/scale"] and scale["rules"][0]["operations"] == ["UPDATE"]
    assert "objectSelector" not in scale, "a Scale carries no labels"
    assert scale["failurePolicy"] == "Ignore", (
        "Fail would block every scale in the cluster while the guard is down"
    )


@cluster
def test_the_controller_username_in_the_match_conditions_is_the_extensions_default() -> None:
    from extension.settings import Settings

    text = (MANIFESTS / "base" / "guard-webhooks.yaml").read_text()
    assert text.count(f"'{Settings().controller_username}'") == 3


@cluster
def test_the_extension_may_only_get_the_parents_of_scale_requests(base: list[Doc]) -> None:
    role = find(base, "ClusterRole", "driftguard-extension-scale-parents")
    for group, resource in [("apps", "deployments"), ("apps", "statefulsets"), ("apps", "replicasets"),
                            ("", "replicationcontrollers")]:  # fmt: skip
        assert allows(role, group, resource, "get"), resource
        for verb in ("list", "watch", *WRITE_VERBS):
            assert not allows(role, group, resource, verb), (resource, verb)


@cluster
def test_the_local_overlay_points_the_webhooks_at_the_host(local: list[Doc]) -> None:
    hooks = webhooks(local)
    assert {key: hook["clientConfig"] for key, hook in hooks.items()} == {
        ("Mutating", "guard.gitops.driftguard.io"): {"url": "https://127.0.0.1:8443/mutate"},
        ("Validating", "guard.gitops.driftguard.io"): {"url": "https://127.0.0.1:8443/validate"},
        ("Validating", "scale.guard.gitops.driftguard.io"): {"url": "https://127.0.0.1:8443/validate"},
    }


# --- RBAC --------------------------------------------------------------------------------------
@cluster
@pytest.mark.parametrize("level", sorted(AGGREGATED))
def test_each_user_role_is_aggregated_into_the_built_in_role_of_its_level(
    base: list[Doc], level: str
) -> None:
    labels = find(base, "ClusterRole", AGGREGATED[level])["metadata"]["labels"]
    aggregation = {k for k in labels if k.startswith("rbac.authorization.k8s.io/aggregate-to-")}
    assert aggregation == {f"rbac.authorization.k8s.io/aggregate-to-{level}"}
    assert labels[f"rbac.authorization.k8s.io/aggregate-to-{level}"] == "true"


@cluster
@pytest.mark.parametrize(
    ("resource", "verb", "view", "edit", "admin"),
    [
        ("applications", "get", True, True, True),
        ("applications", "list", True, True, True),
        ("applications", "watch", True, True, True),
        ("applications/status", "get", True, True, True),
        ("applications", "create", False, True, True),
        ("applications", "update", False, True, True),
        ("applications", "patch", False, True, True),
        ("applications", "delete", False, True, True),
        ("applications", "deletecollection", False, True, True),
        ("applications/sync", "create", False, True, True),
        ("applications/diff", "create", True, True, True),
        ("appprojects", "get", True, True, True),
        ("appprojects", "list", True, True, True),
        ("appprojects", "create", False, False, False),
        ("appprojects", "update", False, False, False),
        ("appprojects", "patch", False, False, False),
        ("appprojects", "delete", False, False, False),
        ("applications/rollback", "create", False, False, True),
    ],
)
def test_the_user_roles_grant_each_level_its_application_rights(
    base: list[Doc], resource: str, verb: str, view: bool, edit: bool, admin: bool
) -> None:
    expected = {"view": view, "edit": edit, "admin": admin}
    actual = {
        lvl: allows(find(base, "ClusterRole", n), GROUP, resource, verb) for lvl, n in AGGREGATED.items()
    }
    assert actual == expected


@cluster
def test_no_aggregated_role_grants_anything_outside_our_group_nor_writes_status_or_projects(
    base: list[Doc],
) -> None:
    aggregated = [
        d
        for d in kinds(base, "ClusterRole")
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in d["metadata"]["labels"])
    ]
    assert {d["metadata"]["name"] for d in aggregated} == set(AGGREGATED.values())
    for role in aggregated:
        for rule in role["rules"]:
            assert rule["apiGroups"] == [GROUP], role["metadata"]["name"]
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], role["metadata"]["name"]
        for verb in WRITE_VERBS:
            assert not allows(role, GROUP, "applications/status", verb), (role["metadata"]["name"], verb)
            assert not allows(role, GROUP, "appprojects", verb), (role["metadata"]["name"], verb)


@cluster
def test_only_the_controller_service_account_may_write_application_status(base: list[Doc]) -> None:
    writers = [
        subject
        for subject in subjects_of(base)
        if any(
            allows(role, GROUP, "applications/status", verb)
            for role in roles_bound_to(base, subject)
            for verb in ("update", "patch")
        )
    ]
    assert writers == [CONTROLLER_SA]


@cluster
def test_the_controller_rights_are_not_bound_to_the_extension_service_account(base: list[Doc]) -> None:
    for binding in kinds(base, "RoleBinding", "ClusterRoleBinding"):
        if binding["roleRef"]["name"].startswith("driftguard-controller"):
            assert binding["subjects"] == [CONTROLLER_SA], binding["metadata"]["name"]
    extension_roles = roles_bound_to(base, EXTENSION_SA)
    assert {r["metadata"]["name"] for r in extension_roles} == {
        "driftguard-extension",
        "driftguard-extension-cabundle",
        "driftguard-extension-namespaces",
        "driftguard-extension-scale-parents",
    }
    for role in extension_roles:
        for rule in role["rules"]:
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], role["metadata"]["name"]
        assert not any(allows(role, GROUP, "applications", verb) for verb in ("get", *WRITE_VERBS))


@cluster
def test_the_extension_may_change_only_its_own_secret_apiservice_and_webhook_configurations(
    base: list[Doc],
) -> None:
    named = {
        ("", "secrets"): ["driftguard-extension-tls"],
        ("coordination.k8s.io", "leases"): ["driftguard-extension-tls"],
        ("apiregistration.k8s.io", "apiservices"): [f"v1alpha1.{GROUP}"],
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): ["driftguard-guard"],
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): ["driftguard-guard"],
    }
    for role in roles_bound_to(base, EXTENSION_SA):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    if (group, resource) in named and rule["verbs"] != ["create"]:
                        # create alone cannot carry resourceNames; everything else must.
                        allowed = named[group, resource]
                        if rule["verbs"] == ["get"] and (group, resource) == ("", "secrets"):
                            allowed = [seals.SECRET_NAME]  # the seal key is read, never changed
                        assert rule.get("resourceNames") == allowed, (group, resource)
                        assert not {"list", "watch"} & set(rule["verbs"]), (group, resource)
    cabundle = find(base, "ClusterRole", "driftguard-extension-cabundle")
    assert all(rule.get("resourceNames") for rule in cabundle["rules"])


@cluster
def test_the_controller_is_bound_cluster_wide_and_holds_its_leader_election_lease(base: list[Doc]) -> None:
    binding = find(base, "ClusterRoleBinding", "driftguard-controller")
    assert binding["roleRef"]["name"] == "driftguard-controller"
    role = find(base, "ClusterRole", "driftguard-controller")
    assert allows(role, "apps", "deployments", "patch"), "it applies whatever Git holds"
    assert allows(role, GROUP, "applications/status", "patch")
    election = find(base, "Role", "driftguard-controller-leader-election")
    assert allows(election, "coordination.k8s.io", "leases", "update")
    assert any(r.get("resourceNames") == ["driftguard-controller"] for r in election["rules"])


def test_every_rbac_rule_in_the_sources_says_why_in_a_comment() -> None:
    rules = 0
    for path in sorted((MANIFESTS / "base").glob("*.yaml")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if re.match(r"\s*- apiGroups:", line):
                rules += 1
                assert lines[number - 1].strip().startswith("#"), f"{path.name}:{number + 1}"
    assert rules > 10


# --- the local overlay ---------------------------------------------------------------------------
@cluster
def test_the_local_overlay_sends_the_extension_service_to_localhost_8443(local: list[Doc]) -> None:
    spec = find(local, "Service", "driftguard-extension")["spec"]
    assert spec["type"] == "ExternalName"
    assert spec["externalName"] == "localhost"
    assert "selector" not in spec
    assert "clusterIP" not in spec
    assert [p["port"] for p in spec["ports"]] == [8443]
    assert find(local, "APIService", f"v1alpha1.{GROUP}")["spec"]["service"]["port"] == 8443


@cluster
def test_the_local_overlay_runs_no_pods_and_drops_the_disruption_budget(local: list[Doc]) -> None:
    assert {d["metadata"]["name"]: d["spec"]["replicas"] for d in kinds(local, "Deployment")} == {
        "driftguard-extension": 0,
        "driftguard-controller": 0,
    }
    assert kinds(local, "PodDisruptionBudget") == []


@cluster
def test_the_local_overlay_changes_nothing_else(base: list[Doc], local: list[Doc]) -> None:
    expected = []
    for doc in copy.deepcopy(base):
        if doc["kind"] == "PodDisruptionBudget":
            continue
        if doc["kind"] == "Deployment":
            doc["spec"]["replicas"] = 0
        routed_to_the_host(doc)
        expected.append(doc)
    assert local == expected


# --- the local-node overlay (hack/e2e-install.sh) ---------------------------------------------------
def routed_to_the_host(doc: Doc) -> None:
    """What ../components/host-routing does to a base object (both local overlays use it)."""
    if doc["kind"] == "APIService":
        doc["spec"]["service"]["port"] = 8443
    if doc["kind"] == "Service":
        doc["spec"] = {
            "type": "ExternalName",
            "externalName": "localhost",
            "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}],
        }
    if doc["kind"] in WEBHOOK_KINDS:
        for webhook in doc["webhooks"]:
            webhook["clientConfig"] = {
                "url": f"https://127.0.0.1:8443{webhook['clientConfig']['service']['path']}"
            }


@cluster
def test_the_local_node_overlay_changes_only_what_a_loopback_only_host_network_forces(
    base: list[Doc], local_node: list[Doc]
) -> None:
    version = re.search(r'^version = "(.+)"$', (REPO_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert version is not None
    expected = []
    for doc in copy.deepcopy(base):
        routed_to_the_host(doc)
        if doc["kind"] == "Namespace":
            labels = doc["metadata"]["labels"]
            labels["pod-security.kubernetes.io/enforce"] = labels["pod-security.kubernetes.io/warn"] = (
                "privileged"
            )
        if doc["kind"] == "Deployment":
            name = doc["metadata"]["name"]
            pod = doc["spec"]["template"]["spec"]
            pod["hostNetwork"] = True
            pod["nodeSelector"] = {"kubernetes.io/hostname": "driftguard-node"}
            pod["tolerations"] = [
                {
                    "key": "gitops.driftguard.io/real-node",
                    "operator": "Equal",
                    "value": "true",
                    "effect": "NoSchedule",
                }
            ]
            container = pod["containers"][0]
            assert container["image"] == f"ghcr.io/driftguard/driftguard:{version.group(1)}"
            container["image"] = f"localhost/driftguard:{version.group(1)}"
            port = container.pop("ports")[0]["containerPort"]
            container["env"] += [
                {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"},
                {"name": "DRIFTGUARD_REUSE_PORT", "value": "true"},
            ]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in container:
                    container[probe]["httpGet"].update(host="127.0.0.1", port=port)
            if name == "driftguard-extension":
                container["env"].append({"name": "DRIFTGUARD_BIND", "value": f"127.0.0.1:{port}"})
            else:
                doc["spec"]["replicas"] = 2
                bind = next(e for e in container["env"] if e["name"] == "DRIFTGUARD_CONTROLLER_BIND")
                bind["value"] = f"127.0.0.1:{port}"
        expected.append(doc)
    assert local_node == expected


# --- kube-apiserver's verdict (server-side dry run) ------------------------------------------------
# `kubectl apply --dry-run=server -k manifests/` cannot pass on a cluster without driftguard:
# a dry-run Namespace is never stored, so every object inside it answers
# 'namespaces "driftguard-system" not found'. So the cluster-scoped and kube-system objects are
# dry-run as they are, and the driftguard-system objects in `default` instead (only their own
# metadata.namespace moves; subjects and the APIService still name driftguard-system), which
# gets them the same schema validation, defaulting and admission.
def dry_run(kubectl: Kubectl, docs: list[Doc]) -> None:
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs))
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(docs), result.stdout + result.stderr


@cluster
def test_kube_apiserver_accepts_the_cluster_scoped_and_kube_system_objects(
    kubectl: Kubectl, rendered: list[Doc]
) -> None:
    docs = copy.deepcopy([d for d in rendered if d["metadata"].get("namespace") in (None, "kube-system")])
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "APIService",
        *WEBHOOK_KINDS,
    }
    for doc in docs:
        if doc["kind"] in WEBHOOK_KINDS:
            # The installed configurations are the local overlay's (url:); applying the base's
            # (service:) over them would merge both into an invalid clientConfig. Fresh names get
            # the same validation.
            doc["metadata"]["name"] += "-dry-run"
    dry_run(kubectl, docs)


@cluster
def test_kube_apiserver_accepts_the_namespaced_objects_when_their_namespace_exists(
    kubectl: Kubectl, rendered: list[Doc]
) -> None:
    docs = copy.deepcopy([d for d in rendered if d["metadata"].get("namespace") == NAMESPACE])
    for doc in docs:
        doc["metadata"]["namespace"] = "default"
    assert {d["kind"] for d in docs} >= {"ServiceAccount", "Role", "RoleBinding", "Service", "Deployment"}
    dry_run(kubectl, docs)

"""Application defaults, validation and unknown fields: every error at once, with kube's paths."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extension.api import schema
from extension.api.validation import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    FieldError,
    apply_defaults,
    parse_duration,
    unknown_fields,
    validate,
    validate_rollback_request,
    validate_sync_request,
)

MINIMAL = yaml.safe_load(
    """
apiVersion: gitops.driftguard.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: team-a}
spec:
  source: {repoURL: "https://github.com/argoproj/argocd-example-apps.git"}
  destination: {namespace: guestbook}
"""
)

# Every field of the schema, set to something valid.
FULL = yaml.safe_load(
    """
apiVersion: gitops.driftguard.io/v1alpha1
kind: Application
metadata: {name: guestbook, namespace: team-a, labels: {team: a}}
spec:
  project: team-a
  source:
    repoURL: git@github.com:argoproj/argocd-example-apps.git
    path: helm-guestbook
    targetRevision: v1.2.3
    helm:
      valueFiles: [values.yaml, envs/prod.yaml]
      values: "replicaCount: 2\\n"
      parameters:
        - {name: image.tag, value: "1.27", forceString: true}
        - {name: ingress.enabled, value: "true"}
      releaseName: guestbook
  destination: {namespace: guestbook, server: "https://kubernetes.default.svc"}
  syncPolicy:
    automated: {prune: true, selfHeal: true, allowEmpty: false}
    syncOptions: [CreateNamespace=true, PrunePropagationPolicy=foreground, ServerSideApply=true]
    retry: {limit: -1, backoff: {duration: 10s, factor: 3, maxDuration: 1h30m}}
  ignoreDifferences:
    - {group: apps, kind: Deployment, name: web, namespace: guestbook, jsonPointers: [/spec/replicas]}
    - {kind: ConfigMap, managedFieldsManagers: [kube-controller-manager]}
  revisionHistoryLimit: 3
  driftGuard:
    mode: warn
    allow:
      users: [alice]
      groups: [sre]
      serviceAccounts: ["monitoring:prometheus-operator", "system:serviceaccount:ci:deployer"]
      kinds: [ConfigMap, apps/Deployment]
      jsonPointers: [/metadata/annotations/kubectl.kubernetes.io~1restartedAt]
    breakGlass: {groups: [sre-oncall], maxDuration: 1h}
operation:
  sync:
    {revision: main, prune: true, resources: [{group: apps, kind: Deployment, name: web}], confirmPrune: true}
  initiatedBy: {username: alice, automated: false}
  requestedAt: "2024-05-01T10:00:00Z"
status:
  observedGeneration: 4
  sync: {status: OutOfSync, revision: 0a1b2c3d}
  health: {status: Degraded, message: "Deployment guestbook/web: 0 of 2 replicas available"}
  resources:
    - {group: apps, version: v1, kind: Deployment, namespace: guestbook, name: web, status: Synced,
       health: {status: Healthy}, requiresPruning: false}
  history:
    - id: 0
      revision: 0a1b2c3d
      deployedAt: "2024-05-01T10:00:05Z"
      initiatedBy: {automated: true}
      source: {repoURL: "https://example.com/repo.git", path: ".", targetRevision: HEAD}
  operationState:
    phase: Succeeded
    message: successfully synced
    startedAt: "2024-05-01T10:00:01Z"
    finishedAt: "2024-05-01T10:00:05.123+02:00"
    operation: {rollback: {id: 0}, initiatedBy: {username: bob}}
    syncResult:
      revision: 0a1b2c3d
      source: {repoURL: "https://example.com/repo.git"}
      resources: [{kind: Deployment, name: web, status: Synced, message: configured}]
  conditions:
    - {type: Ready, status: "False", reason: RenderFailed, message: "helm: bad chart",
       lastTransitionTime: "2024-05-01T10:00:05Z"}
  reconciledAt: "2024-05-01T10:00:05Z"
  drift:
    resources: [{group: apps, kind: Deployment, namespace: guestbook, name: web, fields: [/spec/replicas],
                 by: bob, at: "2024-05-01T11:00:00Z"}]
    breakGlass: [{kind: Deployment, name: web, by: carol, reason: incident 42, at: "2024-05-01T11:00:00Z",
                  expiresAt: "2024-05-01T12:00:00Z"}]
"""
)

_DELETE = object()


def changed(base: dict[str, Any], *edits: tuple[str, object]) -> dict[str, Any]:
    """A copy of base with each dotted path set to a value (or deleted with _DELETE)."""
    app = copy.deepcopy(base)
    for path, value in edits:
        *parents, last = path.split(".")
        node = app
        for key in parents:
            node = node.setdefault(key, {})
        if value is _DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return app


def paths(errors: list[FieldError]) -> list[str]:
    return [error.path for error in errors]


@pytest.mark.parametrize("app", [MINIMAL, FULL], ids=["minimal", "full"])
def test_a_valid_application_has_no_errors_and_no_unknown_fields(app: dict[str, Any]) -> None:
    assert validate(app) == []
    assert validate(apply_defaults(app)) == []
    assert unknown_fields(app) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo.git",
        "http://127.0.0.1:9418/repo",
        "ssh://git@github.com:22/org/repo.git",
        "git://127.0.0.1:9418/repo.git",
        "file:///srv/git/repo.git",
        "git@github.com:org/repo.git",
    ],
)
def test_git_urls_in_every_supported_form_are_accepted(url: str) -> None:
    assert validate(changed(MINIMAL, ("spec.source.repoURL", url))) == []


def case(name: str, path: str, value: object, reason: str, at: str = "") -> Any:
    """Set one field; expect exactly one error, at that field plus ``at``."""
    return pytest.param([(path, value)], [path + at], reason, id=name)


INVALID_CASES = [
    case("no spec", "spec", _DELETE, REQUIRED),
    case("no source", "spec.source", _DELETE, REQUIRED),
    case("no repoURL", "spec.source.repoURL", _DELETE, REQUIRED),
    case("empty repoURL", "spec.source.repoURL", "", REQUIRED),
    case("repoURL not a URL", "spec.source.repoURL", "github.com/org/repo", INVALID),
    case("repoURL with a space", "spec.source.repoURL", "https://h/a b", INVALID),
    case("repoURL an option", "spec.source.repoURL", "-oProxyCommand=x@h:p", INVALID),
    case("repoURL ftp", "spec.source.repoURL", "ftp://host/repo", INVALID),
    case("path with ..", "spec.source.path", "apps/../../etc", INVALID),
    case("absolute path", "spec.source.path", "/etc", INVALID),
    case("path with NUL", "spec.source.path", "a\x00b", INVALID),
    case("path with backslash", "spec.source.path", "a\\..\\b", INVALID),
    case("empty revision", "spec.source.targetRevision", "", INVALID),
    case("revision with space", "spec.source.targetRevision", "main x", INVALID),
    case("revision an option", "spec.source.targetRevision", "--upload-pack=x", INVALID),
    case("source a string", "spec.source", "https://h/r", INVALID),
    case("value file outside", "spec.source.helm.valueFiles", ["../secrets.yaml"], INVALID, "[0]"),
    case(
        "helm parameter without name", "spec.source.helm.parameters", [{"value": "1"}], REQUIRED, "[0].name"
    ),
    case("bad release name", "spec.source.helm.releaseName", "Web_1", INVALID),
    case("kustomize images not a list", "spec.source.kustomize.images", "nginx:1", INVALID),
    case("kustomize label not a string", "spec.source.kustomize.commonLabels", {"a": 1}, INVALID, "[a]"),
    case("directory recurse a string", "spec.source.directory.recurse", "yes", INVALID),
    case("no destination", "spec.destination", _DELETE, REQUIRED),
    case("bad destination namespace", "spec.destination.namespace", "Team_A", INVALID),
    case("http destination server", "spec.destination.server", "http://10.0.0.1", INVALID),
    # Another cluster would be deployed into this one: refused until other clusters exist.
    case("another cluster's server", "spec.destination.server", "https://10.99.99.99:6443", INVALID),
    case("another cluster's name", "spec.destination.name", "prod-eu", INVALID),
    pytest.param(
        [
            ("spec.destination.server", "https://kubernetes.default.svc"),
            ("spec.destination.name", "in-cluster"),
        ],
        ["spec.destination.name"],
        FORBIDDEN,
        id="destination name and server",
    ),
    # A token in the URL would be shown wherever the URL is: status.history, the Table, denials.
    case(
        "repoURL with user and token", "spec.source.repoURL", "https://bob:ghp_s3cret@h/org/r.git", FORBIDDEN
    ),
    case("repoURL with a bare token", "spec.source.repoURL", "https://ghp_s3cret@h/org/r.git", FORBIDDEN),
    case("ssh repoURL with a password", "spec.source.repoURL", "ssh://git:s3cret@h/org/r.git", FORBIDDEN),
    case("bad project", "spec.project", "Team A", INVALID),
    case("unknown syncOption", "spec.syncPolicy.syncOptions", ["Prunee=true"], NOT_SUPPORTED, "[0]"),
    case(
        "bad syncOption value", "spec.syncPolicy.syncOptions", ["CreateNamespace=yes"], NOT_SUPPORTED, "[0]"
    ),
    case(
        "bad propagation", "spec.syncPolicy.syncOptions", ["PrunePropagationPolicy=now"], NOT_SUPPORTED, "[0]"
    ),
    case("syncOption without =", "spec.syncPolicy.syncOptions", ["CreateNamespace"], INVALID, "[0]"),
    case(
        "duplicate syncOption", "spec.syncPolicy.syncOptions", ["Prune=true", "Prune=false"], DUPLICATE, "[1]"
    ),
    case("retry limit below -1", "spec.syncPolicy.retry.limit", -2, INVALID),
    case("retry limit a float", "spec.syncPolicy.retry.limit", 1.5, INVALID),
    case("backoff duration not Go", "spec.syncPolicy.retry.backoff.duration", "5 seconds", INVALID),
    case("backoff factor 0", "spec.syncPolicy.retry.backoff.factor", 0, INVALID),
    case("automated prune a string", "spec.syncPolicy.automated.prune", "true", INVALID),
    case("history limit too big", "spec.revisionHistoryLimit", 1001, INVALID),
    case("history limit negative", "spec.revisionHistoryLimit", -1, INVALID),
    case("history limit a boolean", "spec.revisionHistoryLimit", True, INVALID),
    case("bad mode", "spec.driftGuard.mode", "block", NOT_SUPPORTED),
    case("allow users a string", "spec.driftGuard.allow.users", "alice", INVALID),
    case("allow a number user", "spec.driftGuard.allow.users", [7], INVALID, "[0]"),
    case("allow pointer without /", "spec.driftGuard.allow.jsonPointers", ["spec/replicas"], INVALID, "[0]"),
    case("allow bad pointer escape", "spec.driftGuard.allow.jsonPointers", ["/a~2b"], INVALID, "[0]"),
    case("allow bad service account", "spec.driftGuard.allow.serviceAccounts", ["default"], INVALID, "[0]"),
    case(
        "allow bad service account username",
        "spec.driftGuard.allow.serviceAccounts",
        ["system:serviceaccount:default"],
        INVALID,
        "[0]",
    ),
    case("break-glass bad duration", "spec.driftGuard.breakGlass.maxDuration", "1 hour", INVALID),
    case("break-glass zero duration", "spec.driftGuard.breakGlass.maxDuration", "0s", INVALID),
    case("ignore without kind", "spec.ignoreDifferences", [{"group": "apps"}], REQUIRED, "[0].kind"),
    case(
        "ignore bad pointer",
        "spec.ignoreDifferences",
        [{"kind": "A", "jsonPointers": ["x"]}],
        INVALID,
        "[0].jsonPointers[0]",
    ),
    case("no name", "metadata.name", _DELETE, REQUIRED),
    case("name not DNS", "metadata.name", "Guest_Book", INVALID),
    case("name too long", "metadata.name", "a" * 254, INVALID),
    case("metadata a list", "metadata", [], INVALID),
    case("bad sync status", "status.sync.status", "Done", NOT_SUPPORTED),
    case("bad health status", "status.health.status", "Fine", NOT_SUPPORTED),
    case("bad history id", "status.history", [{"id": "1"}], INVALID, "[0].id"),
    case("bad reconciledAt", "status.reconciledAt", "yesterday", INVALID),
    case("empty operation", "operation", {}, REQUIRED, ".sync"),
    case("rollback without id", "operation.rollback", {}, REQUIRED, ".id"),
    pytest.param(
        [("spec.source.kustomize", {}), ("spec.source.helm", {})],
        ["spec.source.helm"],
        FORBIDDEN,
        id="both kustomize and helm",
    ),
    pytest.param(
        [("spec.source.helm.parameters", [{"name": "a"}, {"name": "a"}])],
        ["spec.source.helm.parameters[1].name"],
        DUPLICATE,
        id="duplicate helm parameter",
    ),
    pytest.param(
        [("operation", {"sync": {}, "rollback": {"id": 1}})],
        ["operation.rollback"],
        FORBIDDEN,
        id="sync and rollback",
    ),
]


@pytest.mark.parametrize(("edits", "expected", "reason"), INVALID_CASES)
def test_an_invalid_application_reports_exactly_the_bad_fields(
    edits: list[tuple[str, object]], expected: list[str], reason: str
) -> None:
    errors = validate(changed(MINIMAL, *edits))
    assert paths(errors) == expected, [e.detail() for e in errors]
    assert {e.type for e in errors} == {reason}


@pytest.mark.parametrize(
    "destination",
    [{}, {"server": ""}, {"server": "https://kubernetes.default.svc"}, {"server": "https://kubernetes.default.svc/"},
     {"name": "in-cluster"}],
)  # fmt: skip
def test_the_cluster_driftguard_runs_in_is_a_valid_destination(destination: dict[str, str]) -> None:
    assert validate(changed(MINIMAL, ("spec.destination", {"namespace": "shop", **destination}))) == []


def test_a_refused_repo_url_never_echoes_the_credentials_it_carries() -> None:
    [error] = validate(changed(MINIMAL, ("spec.source.repoURL", "https://bob:ghp_s3cret@h/org/r.git")))
    assert "ghp_s3cret" not in error.detail() and "bob" not in error.detail()
    assert "repository credential Secret" in error.detail()


def test_an_application_with_five_problems_reports_all_five() -> None:
    app = changed(
        MINIMAL,
        ("spec.source.repoURL", _DELETE),
        ("spec.source.path", "/abs"),
        ("spec.syncPolicy", {"syncOptions": ["Bogus=true"]}),
        ("spec.driftGuard", {"mode": "block"}),
        ("spec.destination.server", "ftp://x"),
    )
    assert sorted(paths(validate(app))) == [
        "spec.destination.server",
        "spec.driftGuard.mode",
        "spec.source.path",
        "spec.source.repoURL",
        "spec.syncPolicy.syncOptions[0]",
    ]


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (FieldError("spec.source.repoURL", REQUIRED, ""), "spec.source.repoURL: Required value"),
        (
            FieldError(
                "spec.driftGuard.mode", NOT_SUPPORTED, 'supported values: "enforce", "warn", "off"', "block"
            ),
            'spec.driftGuard.mode: Unsupported value: "block": supported values: "enforce", "warn", "off"',
        ),
        (FieldError("a", INVALID, "must be positive", -1), "a: Invalid value: -1: must be positive"),
        (FieldError("a", INVALID, "bad", True), "a: Invalid value: true: bad"),
        (FieldError("a", INVALID, "bad"), "a: Invalid value: null: bad"),
        (FieldError("a[1]", DUPLICATE, "", "x"), 'a[1]: Duplicate value: "x"'),
        (FieldError("a", FORBIDDEN, "not here"), "a: Forbidden: not here"),
        (
            FieldError("a", TOO_LONG, "may not be longer than 3", "abcd"),
            "a: Too long: may not be longer than 3",
        ),
    ],
)
def test_field_errors_read_like_kube_apiserver_messages(error: FieldError, detail: str) -> None:
    assert error.detail() == detail
    assert error.cause() == {"reason": error.type, "message": detail.split(": ", 1)[1], "field": error.path}


def test_the_validator_reports_a_bad_mode_with_the_supported_values() -> None:
    [error] = validate(changed(MINIMAL, ("spec.driftGuard", {"mode": "block"})))
    assert error.detail() == (
        'spec.driftGuard.mode: Unsupported value: "block": supported values: "enforce", "warn", "off"'
    )


def test_generate_name_stands_in_for_a_name_only_at_create() -> None:
    app = changed(MINIMAL, ("metadata.name", _DELETE), ("metadata.generateName", "guestbook-"))
    assert validate(app, for_create=True) == []
    assert paths(validate(app)) == ["metadata.name"]
    bad = changed(app, ("metadata.generateName", "Guest-"))
    assert paths(validate(bad, for_create=True)) == ["metadata.generateName"]


def test_sync_and_rollback_request_bodies_are_validated_on_their_own() -> None:
    assert validate_sync_request({}) == []
    assert (
        validate_sync_request({"revision": "main", "prune": True, "resources": [{"kind": "A", "name": "b"}]})
        == []
    )
    assert paths(validate_sync_request({"revision": "a b", "resources": [{"kind": ""}]})) == [
        "resources[0].name",
        "revision",
        "resources[0].kind",
    ]
    assert validate_rollback_request({"id": 3}) == []
    assert paths(validate_rollback_request({})) == ["id"]
    assert paths(validate_rollback_request({"id": -1})) == ["id"]
    assert paths(validate_sync_request("main")) == ["<root>"]


# --- defaults ------------------------------------------------------------------------------------
def test_defaults_fill_what_users_leave_out() -> None:
    spec = apply_defaults(MINIMAL)["spec"]
    assert spec["project"] == "default"
    assert spec["revisionHistoryLimit"] == 10
    assert spec["driftGuard"] == {"mode": "enforce"}
    assert spec["source"]["path"] == "."
    assert spec["source"]["targetRevision"] == "HEAD"
    assert "server" not in spec["destination"]
    assert "syncPolicy" not in spec


def test_defaults_never_change_what_users_set_nor_the_input() -> None:
    before = copy.deepcopy(FULL)
    assert apply_defaults(FULL) == FULL
    assert before == FULL
    app = changed(MINIMAL, ("spec.driftGuard", {"mode": "off"}), ("spec.destination.server", ""))
    assert apply_defaults(app)["spec"]["driftGuard"]["mode"] == "off"
    assert apply_defaults(app)["spec"]["destination"]["server"] == ""


def test_retry_gets_argo_cds_backoff_defaults_only_when_retry_is_set() -> None:
    app = changed(MINIMAL, ("spec.syncPolicy", {"automated": {}}))
    assert "retry" not in apply_defaults(app)["spec"]["syncPolicy"]
    app = changed(MINIMAL, ("spec.syncPolicy", {"retry": {"backoff": {"factor": 3}}}))
    assert apply_defaults(app)["spec"]["syncPolicy"]["retry"] == {
        "limit": 5,
        "backoff": {"duration": "5s", "factor": 3, "maxDuration": "3m"},
    }


def test_a_null_is_defaulted_like_an_absent_field() -> None:
    app = changed(MINIMAL, ("spec.project", None), ("spec.source.path", None))
    spec = apply_defaults(app)["spec"]
    assert (spec["project"], spec["source"]["path"]) == ("default", ".")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("3m", 180), ("1h30m", 5400), ("1.5h", 5400), ("250ms", 0.25), ("0", 0)],
)
def test_go_durations_are_parsed_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 s", "-5s", "1d", "s", "1h 30m"])
def test_strings_that_are_not_go_durations_are_refused(text: str) -> None:
    assert parse_duration(text) is None


# --- unknown fields ------------------------------------------------------------------------------
def test_unknown_fields_are_named_by_their_full_path() -> None:
    app = changed(
        MINIMAL,
        ("spec.source.repoUrl", "https://x/y"),
        ("spec.ignoreDifferences", [{"kind": "A", "jqPathExpressions": [".a"]}]),
        ("status", {"sync": {"status": "Synced", "comparedTo": {}}}),
        ("spec.sourceRef", {"name": "x"}),
    )
    assert unknown_fields(app) == [
        "spec.source.repoUrl",
        "spec.ignoreDifferences[0].jqPathExpressions",
        "spec.sourceRef",
        "status.sync.comparedTo",
    ]


def test_metadata_api_version_kind_and_map_keys_are_never_unknown() -> None:
    app = changed(
        MINIMAL,
        ("metadata.finalizers", ["x"]),
        ("metadata.anything", 1),
        ("spec.source.kustomize", {"commonLabels": {"any.key/at-all": "v"}}),
    )
    assert unknown_fields(app) == []
    assert unknown_fields(changed(MINIMAL, ("extra", 1))) == ["extra"]


# --- never raise ---------------------------------------------------------------------------------
def _all_keys(node: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for key, sub in node.get("properties", {}).items():
        keys |= {key, *_all_keys(sub)}
    if isinstance(node.get("items"), dict):
        keys |= _all_keys(node["items"])
    return keys


_KEYS = sorted(_all_keys(schema.APPLICATION_SCHEMA) | {"name", "generateName", "namespace"})
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["", ".", "..", "/", "5s", "HEAD", "enforce", "Prune=true", "a=b=c", "https://h/r"])
)
# Objects whose keys are mostly the schema's own names, so the walk reaches deep fields.
JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=40,
)
APPS = st.fixed_dictionaries(
    {},
    optional={key: JSON for key in ("apiVersion", "kind", "metadata", "spec", "status", "operation", "x")},
)
_TYPES = {REQUIRED, INVALID, NOT_SUPPORTED, DUPLICATE, TOO_LONG, FORBIDDEN}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app=APPS | JSON, for_create=st.booleans())
def test_the_validator_never_raises_on_any_json(app: Any, for_create: bool) -> None:
    before = json.dumps(app)  # compared as text, since NaN never equals itself
    errors = validate(app, for_create=for_create)
    for error in errors:
        assert error.type in _TYPES
        assert error.detail().startswith(f"{error.path}: ")
    unknown = unknown_fields(app)
    defaulted = apply_defaults(app)
    assert json.dumps(app) == before
    assert json.dumps(apply_defaults(defaulted)) == json.dumps(defaulted)
    assert sorted(unknown_fields(defaulted)) == sorted(unknown)
    validate(defaulted, for_create=for_create)
    validate_sync_request(app)
    validate_rollback_request(app)


_SAMPLES = [
    *("", ".", "..", "../x", "/abs", "a\\b", "a\x00b", "a b", "-x", "~", "0", "5s", "0s", "1h30m", "1.5.5s"),
    *("HEAD", "main", "enforce", "Synced", "Healthy", "Prune=true", "CreateNamespace=yes", "x=y", "="),
    *("https://h/r", "git@h:r", "ftp://h", "ns:name", ":", "/spec/replicas", "/a~2", "Guest_Book"),
    *("2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00+25:00", "a" * 300),
]


def shaped(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that follow the schema most of the way down, then stray: any JSON at any node."""
    kind = node.get("type")
    good: st.SearchStrategy[Any]
    if kind == "object" and "properties" in node:
        good = st.fixed_dictionaries({}, optional={k: shaped(v) for k, v in node["properties"].items()})
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        good = st.dictionaries(st.text(max_size=4), shaped(node["additionalProperties"]), max_size=3)
    elif kind == "array":
        good = st.lists(shaped(node["items"]), max_size=3)
    elif kind == "string":
        good = st.sampled_from([*node.get("enum", ()), *_SAMPLES]) | st.text(max_size=8)
    elif kind == "integer":
        good = st.integers(min_value=-3, max_value=1002) | st.integers()
    elif kind == "boolean":
        good = st.booleans()
    else:
        return JSON
    return st.one_of(good, good, good, JSON)


METADATA = st.fixed_dictionaries(
    {}, optional={k: st.sampled_from(_SAMPLES) | JSON for k in ("name", "generateName", "namespace")}
)
# Apps shaped by the schema, with metadata that is sometimes right and sometimes not.
SHAPED_APPS = st.builds(
    lambda app, meta: {**app, "metadata": meta} if isinstance(app, dict) else app,
    shaped(schema.APPLICATION_SCHEMA),
    METADATA,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app=SHAPED_APPS, for_create=st.booleans())
def test_an_application_that_strays_from_the_schema_anywhere_never_crashes(
    app: Any, for_create: bool
) -> None:
    for error in validate(app, for_create=for_create):
        assert error.type in _TYPES
        error.detail()
    unknown_fields(app)
    validate(apply_defaults(app), for_create=for_create)

"""The Application resource: names and its structural OpenAPI v3 schema, as plain data.

The schema is the one source of truth for field names, types, enums, bounds and defaults:
validation, defaulting, unknown-field detection and the served OpenAPI documents all read it.
It follows the rules of a CRD's ``openAPIV3Schema`` (every node typed, no ``$ref``), and it
keeps Argo CD's field names wherever the field exists there. Pure data: no I/O, no imports
beyond the standard library.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

GROUP = "gitops.driftguard.io"
VERSION = "v1alpha1"
KIND = "Application"
LIST_KIND = "ApplicationList"
PLURAL = "applications"
SINGULAR = "application"
# Argo CD's CRD already takes app/apps; these cannot clash with it.
SHORT_NAMES = ["dgapp", "dgapps"]
CATEGORIES = ["driftguard"]
API_VERSION = f"{GROUP}/{VERSION}"

DRIFT_GUARD_MODES = ("enforce", "warn", "off")
SYNC_STATUSES = ("Synced", "OutOfSync", "Unknown")
HEALTH_STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
OPERATION_PHASES = ("Running", "Terminating", "Failed", "Error", "Succeeded")
CONDITION_STATUSES = ("True", "False", "Unknown")

_BOOLEAN_VALUES = ("true", "false")
# Every syncOption Argo CD users write in an Application, with the values each accepts.
SYNC_OPTION_VALUES: Mapping[str, tuple[str, ...]] = {
    "Validate": _BOOLEAN_VALUES,
    "CreateNamespace": _BOOLEAN_VALUES,
    "PruneLast": _BOOLEAN_VALUES,
    "ApplyOutOfSyncOnly": _BOOLEAN_VALUES,
    "Prune": _BOOLEAN_VALUES,
    "ServerSideApply": _BOOLEAN_VALUES,
    "Replace": _BOOLEAN_VALUES,
    "PrunePropagationPolicy": ("foreground", "background", "orphan"),
    "RespectIgnoreDifferences": _BOOLEAN_VALUES,
    "FailOnSharedResource": _BOOLEAN_VALUES,
}
DEFAULT_SYNC_OPTIONS_KNOWN: frozenset[str] = frozenset(SYNC_OPTION_VALUES)

Schema = dict[str, Any]

_TIME = "RFC 3339 time"


# Small constructors keep the schema below readable as a tree of fields and their meaning.
def _string(
    description: str, *, enum: Sequence[str] = (), fmt: str = "", default: str | None = None
) -> Schema:
    node: Schema = {"type": "string", "description": description}
    if enum:
        node["enum"] = list(enum)
    if fmt:
        node["format"] = fmt
    if default is not None:
        node["default"] = default
    return node


def _time(description: str) -> Schema:
    return _string(f"{description} ({_TIME}).", fmt="date-time")


def _boolean(description: str) -> Schema:
    return {"type": "boolean", "description": description}


def _integer(
    description: str, *, minimum: int | None = None, maximum: int | None = None, default: int | None = None
) -> Schema:
    node: Schema = {"type": "integer", "format": "int64", "description": description}
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    if default is not None:
        node["default"] = default
    return node


def _array(description: str, items: Schema, *, list_type: str = "", keys: Sequence[str] = ()) -> Schema:
    """A list: atomic unless ``list_type`` is ``set`` or ``map`` (keyed by ``keys``), which
    server-side apply merges item by item."""
    node: Schema = {"type": "array", "description": description, "items": items}
    if list_type:
        node["x-kubernetes-list-type"] = list_type
    if keys:
        node["x-kubernetes-list-map-keys"] = list(keys)
    return node


def _strings(description: str, item: str, *, list_type: str = "") -> Schema:
    return _array(description, _string(item), list_type=list_type)


def _object(
    description: str,
    properties: Mapping[str, Schema] | None = None,
    *,
    required: Sequence[str] = (),
    values: Schema | None = None,
    default: Mapping[str, Any] | None = None,
) -> Schema:
    node: Schema = {"type": "object", "description": description}
    if properties is not None:
        node["properties"] = dict(properties)
    if values is not None:
        node["additionalProperties"] = values
    if required:
        node["required"] = list(required)
    if default is not None:
        node["default"] = dict(default)
    return node


def _string_map(description: str) -> Schema:
    return _object(description, values=_string("A value."))


def _health(description: str) -> Schema:
    return _object(
        description,
        {
            "status": _string(
                "Healthy, Progressing (not there yet), Degraded (failed or failing), Suspended "
                "(paused on purpose), Missing (not in the cluster) or Unknown.",
                enum=HEALTH_STATUSES,
            ),
            "message": _string("Why, in words, when the status is not Healthy."),
        },
    )


def _initiated_by(description: str) -> Schema:
    return _object(
        description,
        {
            "username": _string(
                "The Kubernetes user who asked for it, as the API server authenticated them."
            ),
            "automated": _boolean("True when the controller started it on its own (auto-sync or self-heal)."),
        },
    )


def _source(*, defaults: bool = True) -> Schema:
    # Status keeps copies of a source as it was deployed; defaults there would invent values.
    directory = _object(
        "Options for a plain directory of YAML and JSON manifests (the default when neither kustomize "
        "nor helm is set).",
        {
            "recurse": _boolean("Also read manifests in subdirectories of path."),
            "include": _string("A glob of file names to include, e.g. '*.yaml' or '{a.yaml,b.yaml}'."),
            "exclude": _string("A glob of file names to skip; applied after include."),
        },
    )
    kustomize = _object(
        "Options for a kustomization at path (used automatically when path holds a kustomization.yaml).",
        {
            "namePrefix": _string("A prefix added to the name of every rendered resource."),
            "nameSuffix": _string("A suffix added to the name of every rendered resource."),
            "images": _strings(
                "Image overrides, as for `kustomize edit set image`.",
                "An override such as 'nginx=nginx:1.27', 'nginx:1.27' or 'nginx@sha256:...'.",
            ),
            "commonLabels": _string_map("Labels added to every rendered resource and its selectors."),
            "commonAnnotations": _string_map("Annotations added to every rendered resource."),
            "namespace": _string("Overrides the namespace of every namespaced resource kustomize renders."),
        },
    )
    parameter = _object(
        "One Helm value set on the command line, as `helm template --set name=value`.",
        {
            "name": _string("The value's path, e.g. 'image.tag' or 'ingress.hosts[0]'."),
            "value": _string("The value."),
            "forceString": _boolean(
                "Pass the value as a string (`--set-string`), even if it looks like a number."
            ),
        },
        required=["name"],
    )
    helm = _object(
        "Options for a Helm chart at path (used automatically when path holds a Chart.yaml).",
        {
            "valueFiles": _strings(
                "Values files to use, in order, relative to path; later files win.",
                "A values file relative to path, e.g. 'values-prod.yaml'.",
            ),
            "values": _string("Values as an inline YAML block; they win over valueFiles."),
            "parameters": _array("Individual values; they win over values and valueFiles.", parameter),
            "releaseName": _string("The Helm release name; defaults to the Application's name."),
        },
    )
    return _object(
        "Where the desired state lives in Git.",
        {
            "repoURL": _string(
                "The Git repository's URL: https://, http://, ssh://, git://, file:// or scp-like "
                "user@host:path."
            ),
            "path": _string(
                "The directory inside the repository that holds the manifests, kustomization or chart. "
                "Relative to the repository root, without '..'.",
                default="." if defaults else None,
            ),
            "targetRevision": _string(
                "The branch, tag or commit to deploy. HEAD follows the repository's default branch.",
                default="HEAD" if defaults else None,
            ),
            "directory": directory,
            "kustomize": kustomize,
            "helm": helm,
        },
        required=["repoURL"],
    )


def _sync_policy() -> Schema:
    automated = _object(
        "Sync on its own whenever Git changes; without it, syncs happen only when requested.",
        {
            "prune": _boolean("Also delete resources that left Git during automated syncs."),
            "selfHeal": _boolean("Undo changes made in the cluster as soon as they are seen."),
            "allowEmpty": _boolean(
                "Allow a sync whose rendering yields no resources; without it an empty render never prunes."
            ),
        },
    )
    backoff = _object(
        "How long to wait between retries.",
        {
            "duration": _string("The first wait, as a Go duration such as '5s' or '1m'.", default="5s"),
            "factor": _integer("Each wait is the previous one times this factor.", minimum=1, default=2),
            "maxDuration": _string("The longest wait, as a Go duration such as '3m'.", default="3m"),
        },
        default={},
    )
    retry = _object(
        "Retry failed syncs with a backoff.",
        {
            "limit": _integer("How many times to retry; -1 retries forever.", minimum=-1, default=5),
            "backoff": backoff,
        },
    )
    return _object(
        "When and how to sync.",
        {
            "automated": automated,
            "syncOptions": _strings(
                "Options that change how resources are applied, as in Argo CD.",
                "An option such as 'CreateNamespace=true', 'ServerSideApply=true' or "
                "'PrunePropagationPolicy=foreground'.",
                list_type="set",
            ),
            "retry": retry,
        },
    )


def _ignore_difference() -> Schema:
    return _object(
        "Fields to leave out of the comparison for the resources this entry matches.",
        {
            "group": _string("The API group of matching resources; empty for the core group."),
            "kind": _string("The kind of matching resources, e.g. 'Deployment'."),
            "name": _string("Only the resource with this name; empty for all."),
            "namespace": _string("Only resources in this namespace; empty for all."),
            "jsonPointers": _strings(
                "Fields to ignore.", "An RFC 6901 JSON pointer such as '/spec/replicas'."
            ),
            "managedFieldsManagers": _strings(
                "Ignore every field owned by these field managers.",
                "A field manager such as 'kube-controller-manager'.",
            ),
        },
        required=["kind"],
    )


def _drift_guard() -> Schema:
    allow = _object(
        "Changes the guard lets through even though they touch fields Git sets. An entry in any "
        "list is enough.",
        {
            "users": _strings("Users allowed to change Git's fields.", "A Kubernetes username."),
            "groups": _strings("Groups whose members may change Git's fields.", "A Kubernetes group."),
            "serviceAccounts": _strings(
                "Service accounts allowed to change Git's fields.",
                "A service account as 'namespace:name', e.g. 'monitoring:prometheus-operator', or as "
                "its username 'system:serviceaccount:monitoring:prometheus-operator'.",
            ),
            "kinds": _strings(
                "Kinds whose fields anyone may change.",
                "A kind such as 'ConfigMap', or 'group/Kind' such as 'apps/Deployment'.",
            ),
            "jsonPointers": _strings(
                "Fields anyone may change on any managed resource.",
                "An RFC 6901 JSON pointer such as '/spec/replicas'.",
            ),
        },
    )
    break_glass = _object(
        "Emergency changes by trusted groups. The change must carry a reason; it is recorded as an "
        "Event and in status.drift, and the controller restores Git's state when it expires.",
        {
            "groups": _strings("Groups whose members may break the glass.", "A Kubernetes group."),
            "maxDuration": _string(
                "The longest a break-glass change may last, as a Go duration such as '1h'."
            ),
        },
    )
    return _object(
        "What happens when someone changes, in the cluster, a field that Git sets.",
        {
            "mode": _string(
                "enforce denies the change, warn allows it with a warning and records who drifted "
                "what, off does nothing.",
                enum=DRIFT_GUARD_MODES,
                default="enforce",
            ),
            "allow": allow,
            "breakGlass": break_glass,
        },
        default={},
    )


def _spec() -> Schema:
    destination = _object(
        "Where to deploy.",
        {
            "namespace": _string("The namespace for namespaced resources that do not name one."),
            "server": _string(
                "The API server's URL. Empty or 'https://kubernetes.default.svc' means the cluster "
                "driftguard runs in, the only destination supported."
            ),
            "name": _string(
                "The cluster's name instead of its server: 'in-cluster' (or empty) is the cluster "
                "driftguard runs in, the only destination supported."
            ),
        },
    )
    return _object(
        "The desired state: what to deploy from Git, where, and how strictly to keep it.",
        {
            "source": _source(),
            "destination": destination,
            "project": _string("The project this Application belongs to.", default="default"),
            "syncPolicy": _sync_policy(),
            "ignoreDifferences": _array(
                "Differences to ignore when comparing Git with the cluster.", _ignore_difference()
            ),
            "revisionHistoryLimit": _integer(
                "How many entries status.history keeps.", minimum=0, maximum=1000, default=10
            ),
            "driftGuard": _drift_guard(),
        },
        required=["source", "destination"],
    )


def _resource_ref(description: str) -> dict[str, Schema]:
    return {
        "group": _string(f"The API group of the {description}; empty for the core group."),
        "kind": _string(f"The kind of the {description}."),
        "namespace": _string(f"The namespace of the {description}; empty when cluster-scoped."),
        "name": _string(f"The name of the {description}."),
    }


def _operation() -> Schema:
    sync = _object(
        "Sync now.",
        {
            "revision": _string("The revision to sync to; empty means spec.source.targetRevision."),
            "prune": _boolean("Also delete resources that left Git."),
            "resources": _array(
                "Sync only these resources; empty means all.",
                _object("A resource to sync.", _resource_ref("resource"), required=["kind", "name"]),
            ),
            "confirmPrune": _boolean(
                "Confirm a prune that would delete most of what the Application deployed."
            ),
            "dryRun": _boolean(
                "Change nothing: report in status.operationState what a sync would create, "
                "configure and prune, with the diff of each object."
            ),
        },
    )
    rollback = _object(
        "Deploy an earlier revision from status.history. Pauses automated sync until it is re-enabled.",
        {"id": _integer("The id of the status.history entry to deploy.", minimum=0)},
        required=["id"],
    )
    return _object(
        "An operation the controller has been asked to run, set through the sync and rollback "
        "subresources; the controller clears it when it starts and reports in status.operationState.",
        {
            "sync": sync,
            "rollback": rollback,
            "initiatedBy": _initiated_by("Who asked for the operation."),
            "requestedAt": _string(
                "When the operation was requested (RFC 3339, to the microsecond, as metav1.MicroTime).",
                fmt="date-time",
            ),
        },
    )


def _status() -> Schema:
    resource = _object(
        "A resource the Application manages.",
        {
            **_resource_ref("resource"),
            "version": _string("The API version of the resource."),
            "status": _string("Whether the resource matches Git.", enum=SYNC_STATUSES),
            "health": _health("The resource's health."),
            "requiresPruning": _boolean("True when the resource left Git and waits to be pruned."),
        },
    )
    history = _object(
        "A sync that deployed a revision.",
        {
            "id": _integer("The entry's id; pass it to the rollback subresource.", minimum=0),
            "revision": _string("The commit that was deployed."),
            "deployedAt": _time("When the sync finished"),
            "initiatedBy": _initiated_by("Who started the sync."),
            "source": _source(defaults=False),
        },
    )
    result = _object(
        "What happened to one resource.",
        {
            **_resource_ref("resource"),
            "version": _string("The API version of the resource."),
            "status": _string(
                "created, configured, unchanged, pruned, skipped or failed; for a hook, succeeded or failed."
            ),
            "message": _string("What was done or went wrong, e.g. the API server's error."),
            "hookPhase": _string(
                "For a sync hook: the phase it ran in.",
                enum=["PreSync", "Sync", "PostSync", "SyncFail", "PreDelete"],
            ),
            "diff": _string(
                "In a dry run: a unified diff of the live resource against what the sync would make "
                "of it, as YAML (only the fields Git sets differ)."
            ),
        },
    )
    operation_state = _object(
        "The operation that runs or ran last.",
        {
            "phase": _string("Running, Terminating, Failed, Error or Succeeded.", enum=OPERATION_PHASES),
            "message": _string("What the operation is doing or why it ended so."),
            "startedAt": _time("When it started"),
            "finishedAt": _time("When it finished"),
            "operation": _operation(),
            "syncResult": _object(
                "What the sync did.",
                {
                    "revision": _string("The commit that was synced."),
                    "source": _source(defaults=False),
                    "dryRun": _boolean("The sync was a dry run: it changed nothing."),
                    "resources": _array("One entry per resource applied or pruned.", result),
                },
            ),
        },
    )
    condition = _object(
        "An observation about the Application, such as a failed render or fetch.",
        {
            "type": _string("The condition's type, e.g. Ready, ComparisonError or SyncError."),
            "status": _string("True, False or Unknown.", enum=CONDITION_STATUSES),
            "reason": _string("A CamelCase reason, e.g. FetchFailed or RenderFailed."),
            "message": _string("The details, for humans."),
            "lastTransitionTime": _time("When the status last changed"),
        },
        required=["type"],
    )
    drifted = _object(
        "A change to fields Git sets, made outside Git.",
        {
            **_resource_ref("changed resource"),
            "fields": _strings("The fields that were changed.", "A JSON pointer such as '/spec/replicas'."),
            "by": _string("The user who changed them."),
            "at": _time("When"),
        },
    )
    break_glass = _object(
        "A break-glass change.",
        {
            **_resource_ref("changed resource"),
            "by": _string("The user who broke the glass."),
            "reason": _string("The reason they gave."),
            "at": _time("When"),
            "expiresAt": _time("When the controller restores Git's state"),
        },
    )
    return _object(
        "The observed state, written by the controller.",
        {
            "observedGeneration": _integer("The metadata.generation this status describes.", minimum=0),
            "sync": _object(
                "Whether the cluster matches Git.",
                {
                    "status": _string(
                        "Synced, OutOfSync or Unknown (not compared yet, or the comparison failed).",
                        enum=SYNC_STATUSES,
                    ),
                    "revision": _string("The commit the cluster was compared with."),
                },
            ),
            "health": _health("The Application's health: the worst of its resources' health."),
            "resources": _array("The inventory: every resource the Application manages.", resource),
            "history": _array("Past syncs, newest last, at most spec.revisionHistoryLimit.", history),
            "operationState": operation_state,
            "conditions": _array(
                "Current observations, one per type; errors show here.",
                condition,
                list_type="map",
                keys=["type"],
            ),
            "reconciledAt": _time("When the controller last compared the cluster with Git"),
            "drift": _object(
                "Who changed what outside Git, and when.",
                {
                    "resources": _array("Recent changes outside Git, newest last.", drifted),
                    "breakGlass": _array("Break-glass changes, newest last.", break_glass),
                },
            ),
        },
    )


APPLICATION_SCHEMA: Schema = _object(
    "An Application deploys a directory, kustomization or Helm chart from Git into the cluster, "
    "keeps it in sync, and guards the fields Git sets against changes made outside Git.",
    {
        "apiVersion": _string(f"Always '{API_VERSION}'."),
        "kind": _string(f"Always '{KIND}'."),
        # Just a type, as a CRD must have it; the OpenAPI documents point it at ObjectMeta.
        "metadata": {"type": "object"},
        "spec": _spec(),
        "status": _status(),
        "operation": _operation(),
    },
    required=["spec"],
)

# Bodies of POST .../applications/{name}/sync and .../rollback. The server turns them into the
# Application's top-level `operation`; apiVersion and kind are optional so a bare {} works.
SYNC_REQUEST_KIND = "ApplicationSyncRequest"
ROLLBACK_REQUEST_KIND = "ApplicationRollbackRequest"


def _request(kind: str, description: str, operation: str) -> Schema:
    body: Schema = copy.deepcopy(APPLICATION_SCHEMA["properties"]["operation"]["properties"][operation])
    body["description"] = description
    body["properties"] = {
        "apiVersion": _string(f"'{API_VERSION}' when set."),
        "kind": _string(f"'{kind}' when set."),
        **body["properties"],
    }
    return body


SYNC_REQUEST_SCHEMA: Schema = _request(
    SYNC_REQUEST_KIND, "Asks the controller to sync the Application now. Every field is optional.", "sync"
)
ROLLBACK_REQUEST_SCHEMA: Schema = _request(
    ROLLBACK_REQUEST_KIND,
    "Asks the controller to deploy an earlier revision from status.history.",
    "rollback",
)

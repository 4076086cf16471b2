"""The guard's verdicts over real AdmissionReviews (tests/extension/fixtures/guard) and plain
Application dicts: modes, messages, allow rules, break-glass, scale, and failure handling."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import jsonpatch
import pytest

from extension.api import seals
from extension.api.tracking import (
    BREAK_GLASS_GRANT,
    BREAK_GLASS_REASON,
    BREAK_GLASS_UNTIL,
    DRIFTED_AT,
    DRIFTED_BY,
    DRIFTED_FIELDS,
    DRIFTED_SEAL,
    IMPERSONATED_BY,
    TRACKING_ANNOTATION,
)
from extension.guard import verdicts
from extension.guard.index import AppIndex, GuardedApp
from extension.guard.reviews import AdmissionRequest, AdmissionResponse, GroupVersionResource
from extension.guard.verdicts import GuardSettings, ParentUnavailable
from tests.extension.fixtures.guard import app_for, request, review

NOW = datetime.datetime(2026, 11, 24, 18, 30, tzinfo=datetime.UTC)
CONTROLLER = "system:serviceaccount:driftguard-system:driftguard-controller"
IMAGE = "spec.template.spec.containers[0].image"
KEY = b"k" * 32


def patched(req: AdmissionRequest, response: AdmissionResponse) -> dict[str, Any]:
    """The object as kube-apiserver stores it after the mutating webhook's patch."""
    assert response["patchType"] == "JSONPatch"
    obj: dict[str, Any] = jsonpatch.apply_patch(
        req["object"], json.loads(base64.b64decode(response["patch"]))
    )
    return obj


def index_of(*apps: dict[str, Any]) -> AppIndex:
    index = AppIndex()
    index.replace([GuardedApp.of(a) for a in apps])
    return index


class FakeParents:
    def __init__(self, parent: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.parent, self.error = parent, error
        self.calls: list[tuple[str, str, str, str]] = []

    def get(self, resource: GroupVersionResource, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append((resource["group"], resource["resource"], namespace, name))
        if self.error:
            raise self.error
        return self.parent


def validate(
    req: AdmissionRequest,
    *apps: dict[str, Any],
    parents: FakeParents | None = None,
    settings: GuardSettings | None = None,
) -> AdmissionResponse:
    return verdicts.review(req, index_of(*apps), settings or GuardSettings(), NOW, parents)


def where(req: AdmissionRequest) -> str:
    return f"{req['kind']['kind']} {req['namespace']}/{req['name']}"


OWNER = "Application team-a/shop (https://git.example/shop.git, path apps/frontend, revision 3f2a9c1)"


# --- enforce, warn, off -------------------------------------------------------------------------
def test_enforce_denies_a_git_owned_change_naming_object_application_repo_path_revision_and_field() -> None:
    req = request("set-image")
    response = validate(req, app_for(req))
    assert response["uid"] == req["uid"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["message"] == (
        f"{where(req)} is managed by {OWNER}: {IMAGE} is set by Git. "
        "Change it in Git, or see 'break-glass' in the README."
    )


def test_two_fields_are_joined_with_and_and_a_long_list_is_cut_after_three() -> None:
    req = request("set-image")
    req["object"]["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "1"]
    message = validate(req, app_for(req))["status"]["message"]
    assert f"spec.template.spec.containers[0].args and {IMAGE} are set by Git. Change them in Git" in message

    reset = request("reset-managed-fields")
    message = validate(reset, app_for(reset))["status"]["message"]
    assert "metadata.finalizers[0]" in message
    assert " more are set by Git. Change them in Git, or see 'break-glass' in the README." in message
    listed = message.split("revision 3f2a9c1): ")[1].split(" and ")[0].split(", ")
    assert len(listed) == 3, listed


def test_a_revision_not_synced_yet_is_said_so() -> None:
    req = request("set-image")
    message = validate(req, app_for(req, revision=""))["status"]["message"]
    assert "path apps/frontend, revision not synced yet)" in message


def test_warn_mode_allows_with_a_warning_and_the_mutating_webhook_stamps_who_what_and_when() -> None:
    req = request("set-image")
    app = app_for(req, mode="warn")
    response = validate(req, app)
    assert response["allowed"] is True
    assert "status" not in response
    (warning,) = response["warnings"]
    assert warning.startswith(
        f"{where(req)} is managed by {OWNER}: {IMAGE} is set by Git. Allowed in warn mode"
    )

    mutating = request("set-image.mutating")
    mutated = verdicts.mutate(mutating, index_of(app), GuardSettings(), NOW, KEY)
    assert mutated["allowed"] is True
    stamped = patched(mutating, mutated)
    annotations = stamped["metadata"]["annotations"]
    assert annotations[DRIFTED_BY] == "kubernetes-admin"
    assert annotations[DRIFTED_FIELDS] == "/spec/template/spec/containers/0/image"
    assert annotations[DRIFTED_AT] == "2026-11-24T18:30:00Z"
    assert seals.drift_verified(KEY, stamped), "the stamp is sealed with the guard's key"
    assert {k: v for k, v in stamped.items() if k != "metadata"} == {
        k: v for k, v in mutating["object"].items() if k != "metadata"
    }, "the patch touches the annotations only"


def test_a_drift_stamp_anyone_could_write_is_not_the_guards() -> None:
    req = request("set-image.mutating")
    stamped = patched(
        req, verdicts.mutate(req, index_of(app_for(req, mode="warn")), GuardSettings(), NOW, KEY)
    )
    annotations = stamped["metadata"]["annotations"]
    assert not seals.drift_verified(b"another key" * 3, stamped)
    assert not seals.drift_verified(None, stamped)
    for forged in (
        {DRIFTED_BY: "someone-else"},
        {DRIFTED_AT: "2026-01-01T00:00:00Z"},
        {DRIFTED_SEAL: "0" * 64},
        {DRIFTED_SEAL: None},
    ):
        edited = json.loads(json.dumps(stamped))
        edited["metadata"]["annotations"] = {
            k: v for k, v in {**annotations, **forged}.items() if v is not None
        }
        assert not seals.drift_verified(KEY, edited), forged
    copied = json.loads(json.dumps(stamped))
    copied["metadata"]["uid"] = "another-object"
    assert not seals.drift_verified(KEY, copied), "a stamp copied onto another object"


def test_off_mode_allows_silently_and_stamps_nothing() -> None:
    req = request("set-image")
    app = app_for(req, mode="off")
    assert validate(req, app) == {"uid": req["uid"], "allowed": True}
    assert verdicts.mutate(request("set-image.mutating"), index_of(app), GuardSettings(), NOW) == {
        "uid": request("set-image.mutating")["uid"],
        "allowed": True,
    }


def test_the_mutating_webhook_decides_updates_as_the_validating_one_does_without_a_patch_when_denying() -> (
    None
):
    req = request("set-image.mutating")
    mutated = verdicts.mutate(req, index_of(app_for(req)), GuardSettings(), NOW)
    assert mutated == validate(req, app_for(req))
    assert mutated["allowed"] is False and "patch" not in mutated


@pytest.mark.parametrize(
    "name",
    ["patch-add-resources", "rollout-restart", "annotate-unowned", "apply-force-conflicts-same-value"],
)
def test_changes_that_touch_no_field_git_sets_are_allowed(name: str) -> None:
    req = request(name)
    assert validate(req, app_for(req)) == {"uid": req["uid"], "allowed": True}


@pytest.mark.parametrize(
    "name",
    ["patch-env-value", "patch-args", "remove-sidecar", "remove-finalizer", "label-managed-removed",
     "apply-force-conflicts-new-image", "reset-managed-fields", "replace-configmap"],
)  # fmt: skip
def test_changes_removals_and_takeovers_of_git_owned_fields_are_denied(name: str) -> None:
    req = request(name)
    response = validate(req, app_for(req))
    assert response["allowed"] is False, response


def test_a_dry_run_gets_the_same_verdict_as_the_real_request() -> None:
    req = request("patch-dry-run")
    assert req["dryRun"] is True
    response = validate(req, app_for(req))
    assert response["allowed"] is False
    assert f"{IMAGE} is set by Git" in response["status"]["message"]


# --- deletion --------------------------------------------------------------------------------------
def test_enforce_denies_deleting_a_managed_object_and_says_the_controller_prunes_what_leaves_git() -> None:
    req = request("delete-configmap")
    response = validate(req, app_for(req))
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        f"{where(req)} is managed by {OWNER}: it is deleted through Git. Remove it from Git and the "
        "controller prunes it, or see 'break-glass' in the README."
    )


def test_warn_mode_allows_a_deletion_with_a_warning() -> None:
    req = request("delete-configmap")
    response = validate(req, app_for(req, mode="warn"))
    assert response["allowed"] is True
    assert "the controller re-creates it unless it leaves Git" in response["warnings"][0]


@pytest.mark.parametrize(
    "user",
    [
        "system:serviceaccount:kube-system:namespace-controller",
        "system:serviceaccount:kube-system:generic-garbage-collector",
    ],
)
def test_the_deletions_that_follow_a_namespace_or_owner_deletion_are_allowed(user: str) -> None:
    req = request("delete-configmap", userInfo={"username": user, "groups": ["system:serviceaccounts"]})
    assert validate(req, app_for(req))["allowed"] is True


# --- who is let through --------------------------------------------------------------------------
def test_the_controller_identity_is_let_through_and_is_configurable() -> None:
    req = request("controller-update-configmap")
    assert req["userInfo"]["username"] == CONTROLLER
    assert validate(req, app_for(req)) == {"uid": req["uid"], "allowed": True}

    elsewhere = GuardSettings(controller_username="system:serviceaccount:gitops:controller")
    assert validate(req, app_for(req), settings=elsewhere)["allowed"] is False
    admin = request("set-image")
    assert validate(
        admin, app_for(admin), settings=GuardSettings(controller_username="kubernetes-admin")
    ) == {
        "uid": admin["uid"],
        "allowed": True,
    }


def test_the_controller_as_a_projects_service_account_passes_and_that_account_alone_does_not() -> None:
    req = request("set-image")
    req["userInfo"] = {
        "username": "system:serviceaccount:team-a:deployer",
        "groups": ["system:serviceaccounts"],
    }
    assert validate(req, app_for(req))["allowed"] is False, "the ServiceAccount's own token is guarded"
    req["userInfo"]["extra"] = {IMPERSONATED_BY: ["driftguard-controller"]}
    assert validate(req, app_for(req)) == {"uid": req["uid"], "allowed": True}
    req["userInfo"]["extra"] = {IMPERSONATED_BY: ["someone-else"]}
    assert validate(req, app_for(req))["allowed"] is False


def test_status_and_other_subresources_are_allowed() -> None:
    req = request("set-image", subResource="status")
    assert validate(req, app_for(req))["allowed"] is True


def with_user(req: AdmissionRequest, username: str, *groups: str) -> AdmissionRequest:
    req["userInfo"] = {"username": username, "groups": [*groups, "system:authenticated"]}
    return req


@pytest.mark.parametrize(
    ("allow", "user", "groups", "allowed"),
    [
        ({"users": ["alice"]}, "alice", [], True),
        ({"users": ["alice"]}, "bob", [], False),
        ({"groups": ["oncall"]}, "bob", ["oncall"], True),
        ({"groups": ["oncall"]}, "bob", ["dev"], False),
        ({"serviceAccounts": ["ci:deployer"]}, "system:serviceaccount:ci:deployer", [], True),
        (
            {"serviceAccounts": ["system:serviceaccount:ci:deployer"]},
            "system:serviceaccount:ci:deployer",
            [],
            True,
        ),
        ({"serviceAccounts": ["ci:deployer"]}, "system:serviceaccount:ci:other", [], False),
        ({"serviceAccounts": ["ci:deployer"]}, "ci:deployer", [], False),
        ({"kinds": ["Deployment"]}, "bob", [], True),
        ({"kinds": ["apps/Deployment"]}, "bob", [], True),
        ({"kinds": ["batch/Deployment"]}, "bob", [], False),
        ({"kinds": ["ConfigMap"]}, "bob", [], False),
        ({"jsonPointers": ["/spec/template/spec/containers/0/image"]}, "bob", [], True),
        ({"jsonPointers": ["/spec/template"]}, "bob", [], True),
        ({"jsonPointers": ["/spec/replicas"]}, "bob", [], False),
    ],
)
def test_allow_rules_let_through_users_groups_service_accounts_kinds_and_fields(
    allow: dict[str, list[str]], user: str, groups: list[str], allowed: bool
) -> None:
    req = with_user(request("set-image"), user, *groups)
    response = validate(req, app_for(req, allow=allow))
    assert response["allowed"] is allowed, response
    if allowed:
        assert "warnings" not in response


def test_json_pointer_rules_must_cover_every_changed_field() -> None:
    req = with_user(request("set-image"), "bob")
    req["object"]["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "1"]
    response = validate(req, app_for(req, allow={"jsonPointers": ["/spec/template/spec/containers/0/image"]}))
    assert response["allowed"] is False
    assert "spec.template.spec.containers[0].args is set by Git" in response["status"]["message"]


def test_json_pointer_rules_do_not_allow_a_deletion_but_a_kind_rule_does() -> None:
    req = request("delete-configmap")
    assert validate(req, app_for(req, allow={"jsonPointers": ["/data", "/metadata"]}))["allowed"] is False
    assert validate(req, app_for(req, allow={"kinds": ["ConfigMap"]}))["allowed"] is True
    assert validate(req, app_for(req, allow={"kinds": ["core/ConfigMap"]}))["allowed"] is True


# --- break-glass ---------------------------------------------------------------------------------------
def glass(req: AdmissionRequest, reason: str | None, until: str | None, *groups: str) -> AdmissionRequest:
    req = with_user(req, "alice", *groups)
    target = req["object"] if req["operation"] != "DELETE" else req["oldObject"]
    assert target is not None
    annotations = target["metadata"].setdefault("annotations", {})
    if reason is not None:
        annotations[BREAK_GLASS_REASON] = reason
    if until is not None:
        annotations[BREAK_GLASS_UNTIL] = until
    return req


IN_30M = "2026-11-24T19:00:00Z"


@pytest.mark.parametrize(
    ("reason", "until", "groups", "settings", "allowed", "said"),
    [
        ("INC-42: rollback bad image", IN_30M, ["sre"], {"groups": ["sre"]}, True, ""),
        ("INC-42", "2026-11-24T20:30:00+01:00", ["sre"], {"groups": ["sre"]}, True, ""),
        (
            "INC-42",
            "2026-11-24T18:00:00Z",
            ["sre"],
            {"groups": ["sre"]},
            False,
            "it expired at 2026-11-24T18:00:00Z",
        ),
        ("INC-42", "2026-11-24T19:31:00Z", ["sre"], {"groups": ["sre"]}, False, "is more than 1h ahead"),
        ("INC-42", "2026-11-24T20:00:00Z", ["sre"], {"groups": ["sre"], "maxDuration": "2h"}, True, ""),
        (
            "INC-42",
            IN_30M,
            ["sre"],
            {"groups": ["sre"], "maxDuration": "15m"},
            False,
            "is more than 15m ahead",
        ),
        (
            "INC-42",
            IN_30M,
            ["dev"],
            {"groups": ["sre"]},
            False,
            "alice is in none of the break-glass groups (sre)",
        ),
        ("  ", IN_30M, ["sre"], {"groups": ["sre"]}, False, "must give a reason"),
        (None, IN_30M, ["sre"], {"groups": ["sre"]}, False, "must give a reason"),
        ("INC-42", "tomorrow", ["sre"], {"groups": ["sre"]}, False, "must be an RFC 3339 time"),
        ("INC-42", "2026-11-24T19:00:00", ["sre"], {"groups": ["sre"]}, False, "must be an RFC 3339 time"),
        ("INC-42", None, ["sre"], {"groups": ["sre"]}, False, "must be an RFC 3339 time"),
        ("INC-42", IN_30M, ["sre"], {}, False, "names no spec.driftGuard.breakGlass.groups"),
    ],
)
def test_break_glass_needs_an_allowed_group_a_reason_and_an_expiry_within_the_maximum(
    reason: str | None,
    until: str | None,
    groups: list[str],
    settings: dict[str, Any],
    allowed: bool,
    said: str,
) -> None:
    req = glass(request("set-image"), reason, until, *groups)
    response = validate(req, app_for(req, break_glass=settings))
    assert response["allowed"] is allowed, response
    if allowed:
        (warning,) = response["warnings"]
        assert warning == (
            f"break-glass: alice changes {IMAGE} of {where(req)} (reason: {reason!r}) until {until}; "
            "Application team-a/shop restores Git's state when it expires."
        )
    else:
        message = response["status"]["message"]
        assert said in message.partition("Break-glass refused: ")[2], message


def test_break_glass_on_a_deletion_reads_the_annotations_already_on_the_object() -> None:
    req = glass(request("delete-configmap"), "INC-7: stuck finalizer", IN_30M, "sre")
    response = validate(req, app_for(req, break_glass={"groups": ["sre"]}))
    assert response["allowed"] is True
    assert response["warnings"][0].startswith(f"break-glass: alice deletes {where(req)}")


def test_break_glass_in_warn_mode_is_granted_and_not_stamped_as_drift() -> None:
    req = glass(request("set-image.mutating"), "INC-1", IN_30M, "sre")
    app = app_for(req, mode="warn", break_glass={"groups": ["sre"]})
    stamped = patched(req, verdicts.mutate(req, index_of(app), GuardSettings(), NOW, KEY))
    added = set(stamped["metadata"]["annotations"]) - set(req["object"]["metadata"]["annotations"])
    assert added == {BREAK_GLASS_GRANT}
    assert seals.granted_to(KEY, stamped) == "alice"


@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_a_valid_break_glass_set_alone_is_granted_in_a_seal_only_the_guard_can_write(mode: str) -> None:
    req = glass(request("annotate-unowned.mutating"), "INC-9: hotfix", IN_30M, "sre")
    app = app_for(req, mode=mode, break_glass={"groups": ["sre"]})
    response = verdicts.mutate(req, index_of(app), GuardSettings(), NOW, KEY)
    assert response["allowed"] is True
    stamped = patched(req, response)
    assert seals.granted_to(KEY, stamped) == "alice"
    # The grant vouches for this object, this expiry and this reason only.
    for key, value in ((BREAK_GLASS_UNTIL, "2099-01-01T00:00:00Z"), (BREAK_GLASS_REASON, "other")):
        edited = json.loads(json.dumps(stamped))
        edited["metadata"]["annotations"][key] = value
        assert seals.granted_to(KEY, edited) is None, key
    copied = json.loads(json.dumps(stamped))
    copied["metadata"]["uid"] = "another-object"
    assert seals.granted_to(KEY, copied) is None
    assert seals.granted_to(b"x" * 32, stamped) is None


@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_a_break_glass_set_by_someone_outside_its_groups_is_not_granted_and_says_so(mode: str) -> None:
    req = glass(request("annotate-unowned.mutating"), "INC-9", "2099-01-01T00:00:00Z", "dev")
    app = app_for(req, mode=mode, break_glass={"groups": ["sre"]})
    response = verdicts.mutate(req, index_of(app), GuardSettings(), NOW, KEY)
    assert response["allowed"] is True, "annotations Git does not set stay editable"
    assert "patch" not in response
    (warning,) = response["warnings"]
    assert warning.startswith("break-glass not granted: alice is in none of the break-glass groups (sre)")
    assert "is more than 1h ahead" in warning and "ignores these annotations" in warning


def test_a_grant_forged_in_the_request_is_not_passed_off_as_the_guards() -> None:
    # Someone outside the groups writes the break-glass annotations with a grant of their own.
    req = glass(request("annotate-unowned.mutating"), "INC-9", IN_30M, "dev")
    forged = json.dumps({"grantedTo": "alice", "seal": "0" * 64})
    req["object"]["metadata"]["annotations"][BREAK_GLASS_GRANT] = forged
    app = app_for(req, mode="warn", break_glass={"groups": ["sre"]})
    response = verdicts.mutate(req, index_of(app), GuardSettings(), NOW, KEY)
    assert response["allowed"] is True and "patch" not in response, "the guard seals nothing for them"
    assert "break-glass not granted" in response["warnings"][0]
    assert seals.granted_to(KEY, req["object"]) is None, "what they wrote is no grant"
    req["object"]["metadata"]["annotations"][BREAK_GLASS_GRANT] = "[" * 100_000
    assert seals.granted_to(KEY, req["object"]) is None, "nor is a value built to crash a parser"


# --- what is managed ------------------------------------------------------------------------------------
def test_an_object_its_application_does_not_list_is_not_guarded() -> None:
    req = request("set-image")
    assert validate(req, app_for(req, listed=False)) == {"uid": req["uid"], "allowed": True}


def test_an_object_whose_application_is_gone_is_allowed_with_a_warning() -> None:
    req = request("set-image")
    response = validate(req)
    assert response["allowed"] is True
    assert response["warnings"] == [
        f"{where(req)} names Application team-a/shop in its tracking id, but that Application does not "
        "exist: the drift guard does not protect it."
    ]


def test_before_the_index_is_loaded_a_change_to_a_claimed_object_is_refused_and_others_pass() -> None:
    empty = AppIndex()
    req = request("set-image")
    response = verdicts.review(req, empty, GuardSettings(), NOW)
    assert response["allowed"] is False
    assert "has not loaded the Applications yet" in response["status"]["message"]
    unclaimed = request("set-image")
    del unclaimed["oldObject"]["metadata"]["annotations"][TRACKING_ANNOTATION]
    assert verdicts.review(unclaimed, empty, GuardSettings(), NOW)["allowed"] is True


def test_a_tracking_id_copied_onto_another_object_grants_and_blocks_nothing() -> None:
    req = request("set-image")
    req["name"] = "impostor"
    for obj in (req["oldObject"], req["object"]):
        assert obj is not None
        obj["metadata"]["name"] = "impostor"  # the id still names .../web
    app = app_for(req)  # even an inventory that lists the impostor does not make it managed
    assert validate(req, app) == {"uid": req["uid"], "allowed": True}


def test_the_managed_label_alone_makes_nothing_managed() -> None:
    req = request("set-image")
    for obj in (req["oldObject"], req["object"]):
        assert obj is not None
        del obj["metadata"]["annotations"][TRACKING_ANNOTATION]
    assert validate(req, app_for(req)) == {"uid": req["uid"], "allowed": True}


def test_finalizers_may_be_removed_from_an_object_being_deleted() -> None:
    req = request("remove-finalizer")
    assert req["oldObject"] is not None
    req["oldObject"]["metadata"]["deletionTimestamp"] = "2026-11-24T18:29:00Z"
    assert validate(req, app_for(req))["allowed"] is True


# --- creation ------------------------------------------------------------------------------------
def test_creating_an_object_that_claims_an_application_is_denied_unless_the_controller_does_it() -> None:
    req = request("user-create-claiming")
    app = app_for(req, listed=False)
    response = validate(req, app)
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        f"ConfigMap {req['namespace']}/claimer claims {OWNER} in its annotation {TRACKING_ANNOTATION}, "
        "and only the driftguard controller creates what an Application deploys. Add it to Git, or "
        "remove the annotation."
    )
    assert validate(req, app_for(req, mode="warn"))["warnings"][0].endswith("Allowed in warn mode.")
    assert validate(req, app_for(req, mode="off")) == {"uid": req["uid"], "allowed": True}
    assert validate(with_user(req, CONTROLLER), app)["allowed"] is True


def test_a_claiming_object_made_by_its_owners_controller_is_allowed() -> None:
    req = request("user-create-claiming")
    assert req["object"] is not None
    req["object"]["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": True}
    ]
    assert validate(req, app_for(req))["allowed"] is True


def test_creating_with_a_copied_label_or_copied_tracking_id_claims_nothing_and_is_allowed() -> None:
    copied = request("user-create-with-label")  # the id names another ConfigMap
    assert validate(copied, app_for(copied)) == {"uid": copied["uid"], "allowed": True}
    label_only = request("user-create-claiming")
    assert label_only["object"] is not None
    del label_only["object"]["metadata"]["annotations"][TRACKING_ANNOTATION]  # e.g. a Service's Endpoints
    assert validate(label_only, app_for(label_only)) == {"uid": label_only["uid"], "allowed": True}


def test_creating_an_object_claiming_a_missing_application_is_allowed_with_a_warning() -> None:
    req = request("user-create-claiming")
    response = validate(req)
    assert response["allowed"] is True
    assert "but that Application does not exist" in response["warnings"][0]


# --- scale -------------------------------------------------------------------------------------
def scale_app(parent: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    req = request("set-image")
    req["oldObject"] = parent
    return app_for(req, **kwargs)


def test_a_scale_no_inventory_lists_is_allowed_without_reading_anything() -> None:
    req = request("scale-owned")
    parents = FakeParents(review("parent-api"))
    assert validate(req, parents=parents) == {"uid": req["uid"], "allowed": True}
    other = scale_app(review("parent-web"))  # lists apps/Deployment web, not api
    assert validate(req, other, parents=parents)["allowed"] is True
    assert parents.calls == []


def test_a_scale_of_a_listed_name_but_another_kind_is_allowed_without_reading_anything() -> None:
    req = request("scale-owned")
    parent = review("parent-api")
    parent["kind"] = "StatefulSet"
    parents = FakeParents(review("parent-api"))
    assert validate(req, scale_app(parent), parents=parents)["allowed"] is True
    assert parents.calls == []


def test_a_scale_of_replicas_git_sets_is_denied_after_one_read_of_the_parent() -> None:
    req = request("scale-owned")
    parent = review("parent-api")
    parents = FakeParents(parent)
    response = validate(req, scale_app(parent), parents=parents)
    assert parents.calls == [("apps", "deployments", req["namespace"], "api")]
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        f"Deployment {req['namespace']}/api is managed by {OWNER}: spec.replicas is set by Git. "
        "Change it in Git, or see 'break-glass' in the README."
    )
    warned = validate(req, scale_app(parent, mode="warn"), parents=FakeParents(parent))
    assert warned["allowed"] is True and "spec.replicas is set by Git" in warned["warnings"][0]
    allowed = validate(
        req, scale_app(parent, allow={"jsonPointers": ["/spec/replicas"]}), parents=FakeParents(parent)
    )
    assert allowed["allowed"] is True


def test_a_scale_is_allowed_when_git_omits_replicas() -> None:
    req = request("scale-unowned")
    parent = review("parent-web")
    response = validate(req, scale_app(parent), parents=FakeParents(parent))
    assert response == {"uid": req["uid"], "allowed": True}


def test_break_glass_for_a_scale_reads_the_annotations_on_the_parent() -> None:
    req = with_user(request("scale-owned"), "alice", "sre")
    parent = review("parent-api")
    parent["metadata"]["annotations"].update(
        {BREAK_GLASS_REASON: "INC-9 traffic spike", BREAK_GLASS_UNTIL: IN_30M}
    )
    response = validate(req, scale_app(parent, break_glass={"groups": ["sre"]}), parents=FakeParents(parent))
    assert response["allowed"] is True
    assert response["warnings"][0].startswith("break-glass: alice changes spec.replicas of Deployment")


def test_a_scale_of_a_parent_that_is_gone_is_allowed() -> None:
    req = request("scale-owned")
    assert validate(req, scale_app(review("parent-api")), parents=FakeParents(None))["allowed"] is True


def test_a_scale_whose_parent_cannot_be_read_is_denied_with_the_reason() -> None:
    req = request("scale-owned")
    parents = FakeParents(error=ParentUnavailable("could not read deployments.apps x/api: 403 Forbidden"))
    response = validate(req, scale_app(review("parent-api")), parents=parents)
    assert response["allowed"] is False
    assert (
        "could not check this change (could not read deployments.apps x/api: 403 Forbidden)"
        in (response["status"]["message"])
    )
    assert req["uid"] in response["status"]["message"]


# --- failures -----------------------------------------------------------------------------------
class BrokenIndex(AppIndex):
    def get(self, key: Any) -> GuardedApp | None:
        raise RuntimeError("boom")


def test_a_failure_inside_the_guard_denies_a_managed_object_and_is_logged_with_the_uid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = BrokenIndex()
    broken.replace([])
    req = request("set-image")
    response = verdicts.review(req, broken, GuardSettings(), NOW)
    assert response["allowed"] is False
    assert "could not check this change (RuntimeError)" in response["status"]["message"]
    assert any(req["uid"] in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_failure_on_an_object_without_driftguard_marks_allows_it() -> None:
    broken = BrokenIndex()
    broken.replace([])
    req = request("set-image")
    for obj in (req["oldObject"], req["object"]):
        assert obj is not None
        obj["metadata"]["labels"].pop("gitops.driftguard.io/managed")
        del obj["metadata"]["annotations"][TRACKING_ANNOTATION]
    assert verdicts.review(req, broken, GuardSettings(), NOW)["allowed"] is True


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"object": [1, 2]}, "request.object is a list"),
        ({"operation": "PATCH"}, "operation 'PATCH'"),
        ({"userInfo": {"groups": ["x"]}}, "no username"),
        ({"kind": "Deployment"}, "request.kind"),
        ({"oldObject": None}, "without request.oldObject"),
    ],
)
def test_a_review_the_guard_cannot_decode_is_allowed_with_the_reason_logged(
    change: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    req = request("set-image", **change)
    assert validate(req, app_for(request("set-image"))) == {"uid": req["uid"], "allowed": True}
    assert any(reason in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]

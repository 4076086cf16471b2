"""Rendering a checkout into manifests: plain directories, kustomize and helm with the pinned binaries
(offline, no cluster), and every way a source may try to read outside the repository."""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from controller.render import Limits, PathEscapeError, RenderError, TooLargeError, render
from tests.support.cluster import LOCAL_DIR

BIN_DIR = LOCAL_DIR / "bin"


def config_map(name: str, namespace: str = "", **data: str) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    body = "".join(f"\n  {key}: {value!r}" for key, value in data.items()) if data else " {}"
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}{ns}\ndata:{body}\n"


DEPLOYMENT = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: nginx:1.25
    """
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir()
    return root


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run(repo: Path, source: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("bin_dir", BIN_DIR)
    kwargs.setdefault("app_name", "shop")
    return render(repo, source, **kwargs)


def names(manifests: list[dict[str, Any]]) -> list[str]:
    return [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]


def fails(repo: Path, source: dict[str, Any], error: type[RenderError] = RenderError, **kwargs: Any) -> str:
    with pytest.raises(error) as caught:
        run(repo, source, **kwargs)
    return caught.value.message


# --- plain directories ---------------------------------------------------------------------------


def test_a_plain_directory_renders_its_yaml_and_json_files_in_path_order(repo: Path) -> None:
    write(
        repo,
        {
            "apps/web/b.yaml": config_map("b"),
            "apps/web/a.yml": config_map("a"),
            "apps/web/c.json": json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}),
            "apps/web/notes.txt": "not a manifest",
            "apps/web/sub/d.yaml": config_map("d"),
            "apps/other.yaml": config_map("other"),
        },
    )
    manifests = run(repo, {"path": "apps/web"})
    assert names(manifests) == ["ConfigMap/a", "ConfigMap/b", "Secret/c"]
    assert manifests[0] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}}


def test_subdirectories_are_read_only_with_recurse(repo: Path) -> None:
    write(repo, {"app/a.yaml": config_map("a"), "app/sub/deeper/b.yaml": config_map("b"), "app/z.yaml": ""})
    assert names(run(repo, {"path": "app"})) == ["ConfigMap/a"]
    assert names(run(repo, {"path": "app", "directory": {"recurse": True}})) == ["ConfigMap/a", "ConfigMap/b"]


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ({"include": "*.yaml"}, ["a", "b", "c"]),
        ({"include": "{a.yaml,sub/c.yaml}"}, ["a", "c"]),
        ({"include": "sub/*"}, ["c"]),
        ({"exclude": "b.*"}, ["a", "d", "c"]),
        ({"include": "*.{yaml,json}", "exclude": "{sub/*,a.yaml}"}, ["b", "d"]),
        ({"include": "[ab].yaml"}, ["a", "b"]),
        ({"include": "[!ab].json"}, ["d"]),
    ],
)
def test_include_and_exclude_globs_match_the_path_relative_to_the_app_directory(
    repo: Path, directory: dict[str, Any], expected: list[str]
) -> None:
    write(
        repo,
        {
            "app/a.yaml": config_map("a"),
            "app/b.yaml": config_map("b"),
            "app/sub/c.yaml": config_map("c"),
            "app/d.json": json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}}),
        },
    )
    manifests = run(repo, {"path": "app", "directory": {"recurse": True, **directory}})
    assert [m["metadata"]["name"] for m in manifests] == expected


def test_an_unclosed_brace_in_a_glob_is_reported(repo: Path) -> None:
    write(repo, {"app/a.yaml": config_map("a")})
    message = fails(repo, {"path": "app", "directory": {"include": "{a.yaml,b.yaml"}})
    assert message == "spec.source.directory.include: invalid glob '{a.yaml,b.yaml': '{' is never closed"


def test_multi_document_yaml_skips_empty_documents_and_flattens_lists(repo: Path) -> None:
    items = [
        json.loads(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}}))
        for n in "xy"
    ]
    write(
        repo,
        {
            "app/all.yaml": "---\n"
            + config_map("a")
            + "---\n---\n# only a comment\n---\n"
            + config_map("b")
            + "---\n"
            + json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
            + "\n---\napiVersion: v1\nkind: ConfigMapList\nitems: []\n"
        },
    )
    assert names(run(repo, {"path": "app"})) == ["ConfigMap/a", "ConfigMap/b", "ConfigMap/x", "ConfigMap/y"]


def test_dates_stay_strings_and_anchors_do_not_share_objects(repo: Path) -> None:
    write(
        repo,
        {
            "app/cm.yaml": textwrap.dedent(
                """\
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: dated
                  labels: &labels {app: web}
                  annotations: *labels
                data:
                  since: 2024-01-31
                """
            )
        },
    )
    [manifest] = run(repo, {"path": "app"})
    assert manifest["data"] == {"since": "2024-01-31"}
    manifest["metadata"]["labels"]["extra"] = "x"
    assert manifest["metadata"]["annotations"] == {"app": "web"}


def test_an_empty_directory_renders_an_empty_list(repo: Path) -> None:
    (repo / "empty").mkdir()
    write(repo, {"blank/only-comments.yaml": "# nothing yet\n"})
    assert run(repo, {"path": "empty"}) == []
    assert run(repo, {"path": "blank"}) == []


def test_the_default_path_is_the_repository_root(repo: Path) -> None:
    write(repo, {"a.yaml": config_map("a"), ".git/config.yaml": "not: [a manifest"})
    assert names(run(repo, {})) == ["ConfigMap/a"]
    assert names(run(repo, {"path": ".", "directory": {"recurse": True}})) == ["ConfigMap/a"]


# --- kustomize -----------------------------------------------------------------------------------


def test_a_kustomization_renders_with_the_options_from_the_spec(repo: Path) -> None:
    write(
        repo,
        {
            "apps/web/kustomization.yaml": "resources: [deploy.yaml]\n",
            "apps/web/deploy.yaml": DEPLOYMENT,
        },
    )
    source = {
        "path": "apps/web",
        "kustomize": {
            "namePrefix": "prod-",
            "nameSuffix": "-v2",
            "namespace": "shop",
            "images": ["nginx:1.27"],
            "commonLabels": {"team": "checkout"},
            "commonAnnotations": {"owner": "ops"},
        },
    }
    [deployment] = run(repo, source)
    assert deployment["metadata"]["name"] == "prod-web-v2"
    assert deployment["metadata"]["namespace"] == "shop"
    assert deployment["metadata"]["labels"] == {"team": "checkout"}
    assert deployment["metadata"]["annotations"] == {"owner": "ops"}
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "web", "team": "checkout"}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert sorted(p.name for p in (repo / "apps/web").iterdir()) == ["deploy.yaml", "kustomization.yaml"]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx=registry.example:5000/nginx:1.27", "registry.example:5000/nginx:1.27"),
        ("nginx=mirror/nginx", "mirror/nginx:1.25"),
        ("nginx@sha256:" + "a" * 64, "nginx@sha256:" + "a" * 64),
    ],
)
def test_kustomize_image_overrides_take_every_form_of_kustomize_edit_set_image(
    repo: Path, image: str, expected: str
) -> None:
    write(repo, {"app/kustomization.yaml": "resources: [deploy.yaml]\n", "app/deploy.yaml": DEPLOYMENT})
    [deployment] = run(repo, {"path": "app", "kustomize": {"images": [image]}})
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == expected


def test_a_kustomization_without_options_renders_as_written_with_bases_elsewhere_in_the_repo(
    repo: Path,
) -> None:
    write(
        repo,
        {
            "base/kustomization.yml": "resources: [deploy.yaml]\n",
            "base/deploy.yaml": DEPLOYMENT,
            "overlays/prod/Kustomization": "resources: [../../base]\nnamePrefix: prod-\n",
        },
    )
    assert names(run(repo, {"path": "overlays/prod"})) == ["Deployment/prod-web"]


def test_a_kustomize_failure_names_repository_paths_and_no_host_paths(repo: Path) -> None:
    write(
        repo,
        {
            "apps/web/kustomization.yaml": "resources: [deploy.yaml]\npatches:\n- path: missing-patch.yaml\n",
            "apps/web/deploy.yaml": DEPLOYMENT,
        },
    )
    for options in ({}, {"namePrefix": "p-"}):
        message = fails(repo, {"path": "apps/web", "kustomize": options})
        assert message.startswith("kustomize failed (exit 1): ")
        assert "lstat apps/web/missing-patch.yaml: no such file or directory" in message
        assert str(repo) not in message
        assert tempfile.gettempdir() not in message
        assert "driftguard-render-" not in message
        assert "../" not in message


def test_a_missing_kustomize_resource_is_reported_before_kustomize_could_fetch_it(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": "resources: [github.com/example/repo/base]\n"})
    assert fails(repo, {"path": "app"}) == (
        "app/kustomization.yaml: resources entry 'github.com/example/repo/base' is not a file or directory "
        "in the repository at this revision (remote bases are not fetched)"
    )


def test_a_remote_kustomize_base_is_refused(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": "resources:\n- https://github.com/example/repo//base?ref=v1\n"})
    message = fails(repo, {"path": "app"})
    assert message.startswith("app/kustomization.yaml: resources entry 'https://github.com/example/")
    assert message.endswith("is remote; only files and directories in the repository are rendered")


def test_a_kustomize_resource_outside_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    write(
        tmp_path, {"outside/kustomization.yaml": "resources: [cm.yaml]\n", "outside/cm.yaml": config_map("x")}
    )
    write(repo, {"app/kustomization.yaml": "resources: [../../outside]\n"})
    message = fails(repo, {"path": "app"}, PathEscapeError)
    assert message == (
        "app/kustomization.yaml: resources entry '../../outside' resolves outside the repository "
        "(through a symlink or '..')"
    )


def test_a_symlink_out_of_the_repository_inside_a_kustomize_directory_is_refused(
    repo: Path, tmp_path: Path
) -> None:
    write(tmp_path, {"secret.txt": "password=hunter2\n"})
    write(
        repo,
        {
            "app/kustomization.yaml": "configMapGenerator:\n- name: leak\n  files: [data/leak.txt]\n",
            "app/data/inside.txt": "fine",
        },
    )
    (repo / "app/data/leak.txt").symlink_to(tmp_path / "secret.txt")
    message = fails(repo, {"path": "app"}, PathEscapeError)
    assert message == (
        "app/data/leak.txt is a symlink to a location outside the repository; refusing to render"
    )
    assert "hunter2" not in message


def test_a_symlink_out_of_the_repository_in_a_kustomize_base_is_refused(repo: Path, tmp_path: Path) -> None:
    write(tmp_path, {"elsewhere/cm.yaml": config_map("x")})
    write(
        repo,
        {
            "base/kustomization.yaml": "resources: [cm.yaml]\n",
            "app/kustomization.yaml": "resources: [../base]\n",
        },
    )
    (repo / "base/cm.yaml").symlink_to(tmp_path / "elsewhere/cm.yaml")
    message = fails(repo, {"path": "app"}, PathEscapeError)
    assert message.startswith("base/cm.yaml is a symlink to a location outside the repository")


# --- helm ----------------------------------------------------------------------------------------

CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
    "chart/values.yaml": "replicas: 1\ncolor: red\nsize: small\nnote: default\ntag: latest\n",
    "chart/values-prod.yaml": "replicas: 3\ncolor: blue\n",
    "shared/values-common.yaml": "size: large\n",
    "chart/templates/cm.yaml": textwrap.dedent(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-settings
          namespace: {{ .Release.Namespace }}
        data:
          replicas: {{ .Values.replicas | quote }}
          color: {{ .Values.color | quote }}
          size: {{ .Values.size | quote }}
          note: {{ .Values.note | quote }}
          tag: {{ kindOf .Values.tag | quote }}
          list: {{ .Values.list | default list | join ";" | quote }}
        """
    ),
}


def test_a_helm_chart_renders_with_value_files_values_parameters_and_release_name(repo: Path) -> None:
    write(repo, CHART)
    source = {
        "path": "chart",
        "helm": {
            "releaseName": "shop",
            "valueFiles": ["values-prod.yaml", "../shared/values-common.yaml"],
            "values": "color: green\nnote: from values\n",
            "parameters": [
                {"name": "note", "value": "a,b"},
                {"name": "tag", "value": "1234", "forceString": True},
                {"name": "list", "value": "{x,y}"},
            ],
        },
    }
    [config] = run(repo, source, default_namespace="shop-prod")
    assert config["metadata"] == {"name": "shop-settings", "namespace": "shop-prod"}
    assert config["data"] == {
        "replicas": "3",
        "color": "green",
        "size": "large",
        "note": "a,b",
        "tag": "string",
        "list": "x;y",
    }


def test_a_helm_chart_without_a_release_name_is_released_under_the_application_name(repo: Path) -> None:
    # As in Argo CD: a migrated chart keeps the names it templates with .Release.Name.
    write(repo, CHART)
    [config] = run(repo, {"path": "chart"}, app_name="storefront")
    assert config["metadata"]["name"] == "storefront-settings"
    assert config["data"]["color"] == "red"


def test_a_helm_failure_names_the_inline_values_and_no_host_paths(repo: Path) -> None:
    write(repo, CHART)
    message = fails(repo, {"path": "chart", "helm": {"values": "color: [unclosed\n"}})
    assert message.startswith("helm failed (exit 1): ")
    assert "spec.source.helm.values" in message
    assert tempfile.gettempdir() not in message
    assert str(repo) not in message


def test_an_invalid_helm_manifest_names_the_template_it_came_from(repo: Path) -> None:
    write(repo, {**CHART, "chart/templates/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"})
    message = fails(repo, {"path": "chart"})
    assert message == "helm template of chart: document 1 (shop/templates/bad.yaml): missing metadata.name"


@pytest.mark.parametrize(
    ("value_file", "error", "expected"),
    [
        (
            "../../outside.yaml",
            PathEscapeError,
            "helm value file ../../outside.yaml resolves outside the repository",
        ),
        (
            "../shared/linked.yaml",
            PathEscapeError,
            "helm value file ../shared/linked.yaml resolves outside the repository",
        ),
        (
            "https://user:token@example.com/values.yaml",
            RenderError,
            "spec.source.helm.valueFiles[0] is a https URL; only value files in the repository are supported",
        ),
        ("missing.yaml", RenderError, "helm value file missing.yaml (relative to path chart) does not exist"),
    ],
)
def test_a_helm_value_file_outside_the_repository_is_refused(
    repo: Path, tmp_path: Path, value_file: str, error: type[RenderError], expected: str
) -> None:
    write(repo, CHART)
    write(tmp_path, {"outside.yaml": "color: stolen\n"})
    (repo / "shared/linked.yaml").symlink_to(tmp_path / "outside.yaml")
    message = fails(repo, {"path": "chart", "helm": {"valueFiles": [value_file]}}, error)
    assert message.startswith(expected)
    assert "token" not in message


def test_an_absolute_value_file_is_relative_to_the_repository_root(repo: Path) -> None:
    write(repo, CHART)
    [config] = run(repo, {"path": "chart", "helm": {"valueFiles": ["/shared/values-common.yaml"]}})
    assert config["data"]["size"] == "large"


def test_a_symlink_out_of_the_repository_inside_a_chart_is_refused(repo: Path, tmp_path: Path) -> None:
    write(repo, CHART)
    write(tmp_path, {"evil.yaml": config_map("evil")})
    (repo / "chart/templates/evil.yaml").symlink_to(tmp_path / "evil.yaml")
    message = fails(repo, {"path": "chart"}, PathEscapeError)
    assert message.startswith("chart/templates/evil.yaml is a symlink to a location outside the repository")


# --- paths ---------------------------------------------------------------------------------------


def test_an_absolute_path_is_refused(repo: Path) -> None:
    message = fails(repo, {"path": "/etc"}, PathEscapeError)
    assert message == "path /etc must be relative to the repository root, not absolute"


@pytest.mark.parametrize("path", ["..", "apps/../../etc", "apps/.."])
def test_a_path_with_dot_dot_is_refused(repo: Path, path: str) -> None:
    write(repo, {"apps/a.yaml": config_map("a")})
    assert fails(repo, {"path": path}, PathEscapeError) == f"path {path} must not contain '..'"


def test_a_symlinked_app_directory_pointing_out_of_the_repository_is_refused(
    repo: Path, tmp_path: Path
) -> None:
    write(tmp_path, {"elsewhere/cm.yaml": config_map("x")})
    (repo / "apps").mkdir()
    (repo / "apps/web").symlink_to(tmp_path / "elsewhere")
    message = fails(repo, {"path": "apps/web"}, PathEscapeError)
    assert message == "path apps/web resolves outside the repository (through a symlink or '..')"


def test_a_symlinked_file_pointing_out_of_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    write(tmp_path, {"secret.yaml": config_map("secret")})
    write(repo, {"app/a.yaml": config_map("a")})
    (repo / "app/b.yaml").symlink_to(tmp_path / "secret.yaml")
    message = fails(repo, {"path": "app"}, PathEscapeError)
    assert message == "app/b.yaml is a symlink to a location outside the repository; refusing to render"


def test_symlinks_that_stay_inside_the_repository_are_followed(repo: Path) -> None:
    write(repo, {"shared/common.yaml": config_map("common"), "real/a.yaml": config_map("a")})
    (repo / "real/common.yaml").symlink_to(repo / "shared/common.yaml")
    (repo / "apps").mkdir()
    (repo / "apps/web").symlink_to(Path("../real"))
    assert names(run(repo, {"path": "apps/web"})) == ["ConfigMap/a", "ConfigMap/common"]


def test_a_missing_path_says_it_does_not_exist_at_this_revision(repo: Path) -> None:
    message = fails(repo, {"path": "apps/x"})
    assert message == "path apps/x does not exist in the repository at this revision"


# --- what a manifest must be ---------------------------------------------------------------------


def test_bad_yaml_is_reported_with_the_file_and_line_but_not_the_content(repo: Path) -> None:
    write(
        repo,
        {"apps/web/bad.yaml": config_map("a") + "---\napiVersion: v1\nkind: Secret\n  password: hunter2\n"},
    )
    message = fails(repo, {"path": "apps/web"})
    assert message.startswith("apps/web/bad.yaml: line 9, column 11: invalid YAML: mapping values")
    assert "invalid YAML: " in message
    assert "hunter2" not in message


@pytest.mark.parametrize("text", ["a: " + "[" * 100_000, "{a: " * 50_000, "- " * 30_000 + "x"])
def test_yaml_nested_without_end_is_refused_not_a_crash(repo: Path, text: str) -> None:
    """libyaml parses the manifests: its nesting limit answers, in a worker thread as the
    controller's, where Python's recursion limit answered before."""
    write(repo, {"app/deep.yaml": text})
    caught: list[str] = []
    worker = threading.Thread(target=lambda: caught.append(fails(repo, {"path": "app"})))
    worker.start()
    worker.join()
    assert caught and caught[0].startswith("app/deep.yaml: line 1, column ")
    assert "invalid YAML: exceeded maximum nesting depth" in caught[0]


def test_bad_json_is_reported_with_the_file_and_line(repo: Path) -> None:
    write(repo, {"app/x.json": '{\n  "apiVersion": "v1",\n  "kind" "ConfigMap"\n}\n'})
    message = fails(repo, {"path": "app"})
    assert message == "app/x.json: line 3, column 10: invalid JSON: Expecting ':' delimiter"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n", "missing metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\n", "missing metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 42}\n", "metadata.name must be a string"),
        ("kind: ConfigMap\nmetadata: {name: a}\n", "missing apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "missing kind"),
        ("- just\n- a list\n", "not a Kubernetes object (a list, not a mapping)"),
        ("plain text\n", "not a Kubernetes object (a string, not a mapping)"),
    ],
)
def test_a_document_that_is_not_a_kubernetes_object_is_named_by_file_and_document(
    repo: Path, document: str, problem: str
) -> None:
    write(repo, {"apps/web/deploy.yaml": config_map("a") + "---\n" + document})
    assert fails(repo, {"path": "apps/web"}) == f"apps/web/deploy.yaml: document 2: {problem}"


def test_every_invalid_object_is_listed_at_once(repo: Path) -> None:
    bad = "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"
    list_doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "X"}]})
    write(repo, {"app/a.yaml": bad, "app/b.yaml": config_map("ok") + "---\n" + list_doc})
    assert fails(repo, {"path": "app"}) == (
        "app/a.yaml: document 1: missing metadata.name; app/b.yaml: document 2: item 1: missing metadata.name"
    )


def test_an_object_defined_twice_is_reported_with_both_places(repo: Path) -> None:
    write(
        repo,
        {
            "app/a.yaml": config_map("settings"),
            "app/b.yaml": config_map("other") + "---\n" + config_map("settings", namespace="shop"),
            "app/c.yaml": config_map("settings", namespace="elsewhere"),
        },
    )
    message = fails(repo, {"path": "app"}, default_namespace="shop")
    assert message == (
        "ConfigMap/shop/settings is defined twice: in app/a.yaml (document 1) and in app/b.yaml (document 2)"
    )
    assert len(run(repo, {"path": "app"}, default_namespace="other")) == 4


def test_more_than_one_source_type_is_refused(repo: Path) -> None:
    write(repo, {"app/a.yaml": config_map("a")})
    message = fails(repo, {"path": "app", "kustomize": {"namePrefix": "x-"}, "helm": {"releaseName": "r"}})
    assert message == "spec.source sets kustomize and helm; set at most one of directory, kustomize, helm"


# --- limits --------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_with_the_limit(repo: Path) -> None:
    write(repo, {"app/big.yaml": config_map("big", blob="x" * 2048)})
    message = fails(repo, {"path": "app"}, TooLargeError, limits=Limits(max_file_bytes=1024))
    assert message.startswith("app/big.yaml is ")
    assert message.endswith("over the limit of 1 KiB per file")


def test_rendered_output_over_the_total_limit_is_refused(repo: Path) -> None:
    write(repo, {f"app/{n}.yaml": config_map(f"cm-{n}", blob="x" * 800) for n in range(10)})
    message = fails(repo, {"path": "app"}, TooLargeError, limits=Limits(max_total_bytes=4096))
    assert (
        message == "the rendered manifests are over the limit of 4 KiB (reached at app/4.yaml (document 1))"
    )


def test_a_yaml_alias_bomb_is_stopped_by_the_total_limit(repo: Path) -> None:
    lines = ["a0: &a0 [" + ",".join(["x"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nbomb:\n" + "".join(
        f"  {line}\n" for line in lines
    )
    write(repo, {"app/bomb.yaml": bomb})
    fails(repo, {"path": "app"}, TooLargeError, limits=Limits(max_total_bytes=1 << 20))


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A bin dir whose kubectl is a Python script, to play a tool that hangs or floods its output."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    return bin_dir


def fake_tool(bin_dir: Path, body: str) -> None:
    script = bin_dir / "kubectl"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(0o755)


def test_a_tool_that_runs_past_the_timeout_is_stopped(repo: Path, fake_bin: Path) -> None:
    fake_tool(fake_bin, "time.sleep(30)")
    write(repo, {"app/kustomization.yaml": "resources: []\n"})
    message = fails(repo, {"path": "app"}, bin_dir=fake_bin, limits=Limits(timeout_seconds=0.5))
    assert message == "kustomize did not finish within 0.5 seconds"


def test_a_tool_writing_more_than_the_total_limit_is_stopped(repo: Path, fake_bin: Path) -> None:
    fake_tool(fake_bin, "sys.stdout.write('x' * (1 << 20)); sys.stdout.flush(); time.sleep(30)")
    write(repo, {"app/kustomization.yaml": "resources: []\n"})
    message = fails(
        repo, {"path": "app"}, TooLargeError, bin_dir=fake_bin, limits=Limits(max_total_bytes=4096)
    )
    assert message == "kustomize output is over the limit of 4 KiB"


def test_a_tool_gets_an_empty_environment_and_its_stderr_is_trimmed(
    repo: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(
        fake_bin,
        "import os\n"
        # Python itself adds LC_CTYPE when it starts in the C locale (PEP 538).
        "names = sorted(set(os.environ) - {'LC_CTYPE'})\n"
        "sys.stderr.write('x' * 5000 + ' ' + ','.join(names) + ' ' + sys.argv[2])\n"
        "sys.exit(3)",
    )
    write(repo, {"app/kustomization.yaml": "resources: []\n"})
    monkeypatch.setenv("DRIFTGUARD_TEST_SECRET", "s3cret")
    message = fails(repo, {"path": "app"}, bin_dir=fake_bin)
    assert message.startswith("kustomize failed (exit 3): …xxx")
    assert message.endswith(" HOME,KUBECONFIG,TMPDIR app")
    assert len(message) < 2100

"""The build groups: each keyed by its own pins, the control plane's key unchanged, the
recipes' go.mod handling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlgen import versions
from mlgen.cluster import argocd as argocd_harness
from mlgen.cluster import build, fluxcd, golang, processes, recipes
from mlgen.errors import ClusterError

ROOT = Path(__file__).resolve().parents[1]


def test_each_group_has_its_own_directory_and_the_control_plane_keeps_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLGEN_CACHE_DIR", str(tmp_path))
    assert build.bin_dir() == tmp_path / "bin" / (
        f"k8s-{versions.KUBERNETES}_etcd-{versions.ETCD}_kwok-{versions.KWOK}"
    )
    assert build.group_dir("control-plane") == build.bin_dir()
    assert build.group_dir("node") == tmp_path / "bin" / f"node-k8s-{versions.KUBERNETES}"
    assert build.group_dir("gitops").name == (
        f"gitops-flux-{versions.FLUX}_argocd-{versions.ARGOCD}-controller+repo-server+git-ask-pass_"
        f"kustomize-{versions.KUSTOMIZE}"
    )
    assert len({build.group_dir(g) for g in build.GROUPS}) == len(build.GROUPS)
    assert build.group_dir("kueue").name == f"kueue-{versions.KUEUE}"
    assert list(build.GROUPS) == ["control-plane", "node", "gitops", "kueue", "kind"]
    # kind is built on request (`--kind`: root, Docker), after the groups it reads.
    assert [n for n, g in build.GROUPS.items() if not g.default] == ["kind"]
    assert build.GROUPS["kind"].requires == ("control-plane", "node")


def test_a_group_key_changes_only_with_its_own_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    before = {g: versions.group_key(g) for g in build.GROUPS}
    monkeypatch.setattr(versions, "ARGOCD", "v2.99.0")
    after = {g: versions.group_key(g) for g in build.GROUPS}
    assert [g for g in build.GROUPS if before[g] != after[g]] == ["gitops"]
    monkeypatch.setattr(versions, "KIND", "v0.99.0")
    again = {g: versions.group_key(g) for g in build.GROUPS}
    assert [g for g in build.GROUPS if after[g] != again[g]] == ["kind"]
    monkeypatch.setattr(versions, "KUEUE", "v0.99.0")
    last = {g: versions.group_key(g) for g in build.GROUPS}
    assert [g for g in build.GROUPS if again[g] != last[g]] == ["kueue"]


def test_a_complete_group_is_reused_without_go(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = build.group_dir("node", tmp_path)
    target.mkdir(parents=True)
    (target / "kubelet").write_bytes(b"")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no go: it must not be needed
    said: list[str] = []
    assert build.ensure_group("node", root=tmp_path, progress=said.append) == target
    assert said == [f"node: cached in {target}"]
    assert not build.is_built(target, "gitops")


def test_an_unknown_group_names_the_choices() -> None:
    with pytest.raises(
        ClusterError,
        match=r"no build group 'gpu'; choose one of "
        r"control-plane, node, gitops, kueue, kind",
    ):
        build.ensure_group("gpu", progress=lambda _: None)


def test_the_gitops_group_needs_its_crds_too() -> None:
    files = build.GROUPS["gitops"].files
    assert {"source-controller", "kustomize-controller", "argocd", "kustomize"} <= set(files)
    assert "crds/argocd/application-crd.yaml" in files
    assert any(f.startswith("crds/flux/") for f in files)


def test_the_kueue_group_needs_the_crds_its_tests_create() -> None:
    files = build.GROUPS["kueue"].files
    assert "kueue" in files
    for kind in ("clusterqueues", "localqueues", "workloads"):
        assert f"crds/kueue/kueue.x-k8s.io_{kind}.yaml" in files


def test_replacements_are_read_from_a_go_mod_and_local_paths_left_out() -> None:
    gomod = (
        "module example.com/x\n\ngo 1.24\n\n"
        "replace github.com/a/b => github.com/c/b v1.2.3 // fork\n"
        "replace (\n"
        "\tk8s.io/api => k8s.io/api v0.31.0\n"
        "\tk8s.io/local => ./staging/local\n"
        "\tgopkg.in/yaml.v3 v3.0.0 => gopkg.in/yaml.v3 v3.0.1\n"
        ")\n"
        "require k8s.io/api v0.0.0\n"
    )
    assert golang.replacements(gomod) == {
        "github.com/a/b": "github.com/c/b v1.2.3",
        "k8s.io/api": "k8s.io/api v0.31.0",
        "gopkg.in/yaml.v3": "gopkg.in/yaml.v3 v3.0.1",
    }
    assert (
        golang.replace_lines({"k8s.io/api": "k8s.io/api v0.31.0"})
        == "replace k8s.io/api => k8s.io/api v0.31.0\n"
    )


def test_gitops_pins_live_only_in_versions() -> None:
    pinned = [
        versions.FLUX,
        versions.ARGOCD,
        versions.KUSTOMIZE,
        *(v for pins in versions.FLUX_REPLACES.values() for v in pins.values()),
    ]
    for path in ROOT.glob("generator/**/*.py"):
        if path != ROOT / "generator" / "versions.py":
            text = path.read_text()
            assert not [v for v in pinned if v in text], f"{path} repeats a pinned version"


def test_a_tool_that_is_not_built_says_how_to_build_it(tmp_path: Path) -> None:
    target = build.group_dir("gitops", tmp_path)
    with pytest.raises(
        ClusterError, match=r"gitops binaries are missing; run `mlgen cluster build"
    ):
        build.require_group("gitops", target)
    with pytest.raises(ClusterError, match="gitops binaries are missing"):
        fluxcd.start(None, kubeconfig=tmp_path, workdir=tmp_path, binaries=target)  # type: ignore[arg-type]


def test_a_process_group_in_a_with_block_always_stops(tmp_path: Path) -> None:
    stopped: list[str] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def stop(self) -> None:
            stopped.append(self.name)

    group = processes.Group()
    group.processes = [Fake("redis"), Fake("controller")]  # type: ignore[list-item]
    with pytest.raises(RuntimeError), group as same:
        assert same is group
        raise RuntimeError("a test failed inside")
    assert stopped == ["controller", "redis"]


def test_argo_cd_is_built_with_only_the_components_the_harness_runs() -> None:
    """mlgen's main for Argo CD links the controller, the repo server and the Git
    credential helper, chosen by ARGOCD_BINARY_NAME as the harness sets it; not the API
    server, CLI, dex or notifications that Argo CD's own main links too."""
    module = "github.com/argoproj/argo-cd/v2"
    source = recipes.argocd_main(module, versions.ARGOCD_COMPONENTS)
    imported = set(re.findall(rf'"{re.escape(module)}/cmd/([^/"]+)/commands"', source))
    assert imported == set(versions.ARGOCD_COMPONENTS)
    assert not imported & {"argocd", "argocd-server", "argocd-dex", "argocd-notification"}
    harness = Path(argocd_harness.__file__).read_text()
    assert set(re.findall(r'"ARGOCD_BINARY_NAME": "([^"]+)"', harness)) <= imported
    assert 'os.Getenv("ARGOCD_BINARY_NAME")' in source
    assert "os.Exit(2)" in source  # any other name is refused, not run as the CLI

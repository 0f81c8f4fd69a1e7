"""`mlgen init`: the files of a GitOps repository for mlgen batches.

Lays out `batches/` with an example (a matrix sweep), `manifests/` rendered from it (so
`mlgen render --check` passes from the first commit), a conformance suite for the local
control plane or kind, CI workflows (kind conformance, render check), an Argo CD
Application and a Flux Kustomization for the manifests, and a pre-commit configuration
whose local hook runs `mlgen render --check --prune` with the mlgen installed beside it.
It adds to an existing repository but never overwrites a file: when any target exists,
nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mlgen import DISTRIBUTION, render, source, templating, tree, versions
from mlgen.errors import UsageError


def requirement(extra: str = "") -> str:
    """What the scaffold's workflows install: this very version (with `extra`, say
    "kind"), so CI renders and checks with the mlgen that wrote the files; unpinned only
    when run from a bare source tree."""
    name = f"{DISTRIBUTION}[{extra}]" if extra else DISTRIBUTION
    try:
        return f"{name}=={metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return name


# target path -> template under templates/init/
FILES = {
    "batches/example.yaml": "example.yaml.j2",
    "conformance/conftest.py": "conftest.py.j2",
    "conformance/test_batches.py": "test_batches.py.j2",
    "pytest.ini": "pytest.ini.j2",
    "kind-config.yaml": "kind-config.yaml.j2",
    ".github/workflows/conformance.yaml": "conformance.yaml.j2",
    ".github/workflows/render-check.yaml": "render-check.yaml.j2",
    "deploy/argocd/application.yaml": "application.yaml.j2",
    "deploy/flux/kustomization.yaml": "kustomization.yaml.j2",
    ".pre-commit-config.yaml": "pre-commit-config.yaml.j2",
    ".gitignore": "gitignore.j2",
}


@dataclass(frozen=True)
class Options:
    batch: str = "example-sweep"
    namespace: str = "ml-training"
    kubernetes_version: str = "1.36"
    repo_url: str = "https://git.example.com/ml/gitops.git"


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# https://host/path, ssh://git@host/path, git@host:path (the forms Flux and Argo CD take)
_REPO_URL = re.compile(r"(?:(?:https?|ssh|git)://[^\s\"'\\]+|[\w.-]+@[\w.-]+:[^\s\"'\\]+)")


def _check(options: Options) -> None:
    """The options go into YAML and workflow files as written: refuse what would break
    them, before anything is written."""
    if not _DNS_LABEL.fullmatch(options.namespace):
        raise UsageError(
            f"--namespace {options.namespace!r} is not a Kubernetes namespace name; use at "
            "most 63 lowercase letters, digits and '-', starting and ending with a letter "
            "or digit"
        )
    if not _REPO_URL.fullmatch(options.repo_url) or len(options.repo_url) > 2048:
        raise UsageError(
            f"--repo-url {options.repo_url!r} is not a Git URL; write https://host/path.git, "
            "ssh://git@host/path.git or git@host:path.git"
        )


def files(options: Options) -> dict[str, str]:
    """Every scaffold file's text by its path in the repository."""
    values = {k: getattr(options, k) for k in Options.__dataclass_fields__}
    values.update(requirement=requirement(), kind_requirement=requirement("kind"))
    # What the users' CI pulls: kind and its node image as kind's release notes list it.
    values.update(kind_version=versions.KIND, kind_node_image=versions.KIND_RELEASED_NODE)
    return {path: templating.render(f"init/{name}", **values) for path, name in FILES.items()}


def create(root: Path, options: Options = Options()) -> list[str]:
    """Write the scaffold under `root` and render the example into `manifests/`; return
    the paths written. Raises UsageError, writing nothing, if any of them exists."""
    _check(options)
    texts = files(options)
    taken = sorted(p for p in texts if (root / p).exists() or (root / p).is_symlink())
    taken += sorted(
        {
            f"{parent.relative_to(root)} (a file where a directory goes)"
            for p in [*texts, f"manifests/{options.batch}/x"]
            for parent in (root / p).parents
            if parent != root and root in parent.parents and parent.exists() and not parent.is_dir()
        }
    )
    manifests = root / "manifests" / options.batch
    if manifests.exists():
        taken.append(f"manifests/{options.batch}/")
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise UsageError(
            f"mlgen init never overwrites files, and {root} has {shown}; move "
            "them away or init another directory"
        )
    example = "batches/example.yaml"
    # Render before writing anything: a broken template must not leave half a scaffold.
    batches, problems = source.load_text(texts[example], source=example)
    if problems:
        raise AssertionError(f"mlgen init's example batch is invalid: {problems}")
    rendered = render.render_all(batches)
    for path, text in texts.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (root / "manifests").mkdir(exist_ok=True)
    plan = tree.plan(
        root / "manifests",
        rendered.files,
        scopes=rendered.scopes,
        batches=rendered.batches,
        prune=False,
    )
    tree.apply(plan)
    return [*texts, *(f"manifests/{p}" for p in sorted(rendered.files))]

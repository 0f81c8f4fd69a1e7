"""Read batch files: YAML documents -> validated `spec.Batch` objects, or one error.

Errors carry the file, the line (taken from the YAML node the problem sits on), the
path inside the document (`spec.jobs[3].name`) and the fix, one problem a line, all
problems of all files at once, so a user fixes a file in one round trip.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydantic
import yaml

from mlgen import limits, matrix, messages, places, spec
from mlgen.errors import SpecError

try:  # the C parser is ~10x faster on large batches; fall back where libyaml is missing
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

_TYPE_FIXES = {
    "string_type": "must be a string; put the value in quotes",
    "int_type": "must be a whole number",
    "list_type": "must be a list, like [a, b]",
    "dict_type": "must be a mapping of key: value",
    "model_type": "must be a mapping of key: value",
    "missing": "is required; add it",
    "bool_type": "must be true or false",
}


@dataclass(frozen=True)
class Loaded:
    """The batches of the files and directories given, and the files found in those
    directories that hold no batch (a kustomization.yaml, a values file), skipped."""

    batches: list[spec.Batch]
    skipped: list[str]


def load_files(paths: Sequence[Path]) -> list[spec.Batch]:
    """Every batch in every file (a directory stands for its *.yaml and *.yml files that
    hold batches), or a `SpecError` listing every problem found."""
    return load(paths).batches


def load(paths: Sequence[Path]) -> Loaded:
    """`load_files`, also saying which files of the directories given it skipped."""
    found = [
        (f, p.is_dir())
        for p in paths
        for f in (sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p])
    ]
    paths = [f for f, _ in found]
    batches: list[spec.Batch] = []
    problems: list[str] = []
    skipped: list[str] = []
    for path, in_directory in found:
        try:
            status = path.stat()
            if not stat.S_ISREG(status.st_mode):
                raise SpecError(
                    f"{display_name(path)}: is not a regular file (a device, a pipe or a "
                    "socket, perhaps through a symlink); name the batch file itself"
                )
            limits.check_file_size(status.st_size, source=display_name(path))
            with path.open("rb") as handle:  # a file that grows while read stops here
                data = handle.read(limits.MAX_FILE_BYTES + 1)
            limits.check_file_size(len(data), source=display_name(path))
            text = data.decode("utf-8")
        except FileNotFoundError as e:
            raise SpecError(f"{path}: no such file; check the path") from e
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"{path}: cannot be read as UTF-8 text ({e})") from e
        # A file named on the command line is a batch file whatever it holds; one met in
        # a directory is read only if it claims to be one, so a GitOps directory's
        # kustomization.yaml or values file can sit beside the batches.
        if in_directory and not claims_batch(text):
            skipped.append(display_name(path))
            continue
        read, errors = load_text(text, source=display_name(path))
        batches.extend(read)
        problems.extend(errors)
    seen: dict[str, str] = {}
    for batch in batches:
        if batch.name in seen:
            problems.append(
                f"{batch.source}: metadata.name: batch {batch.name!r} is also "
                f"defined in {seen[batch.name]}; batch names must be unique "
                "(each renders to manifests/<name>/)"
            )
        seen.setdefault(batch.name, batch.source)
    if problems:
        files = [display_name(p) for p in paths]
        raise SpecError("\n".join(messages.by_file_and_line(problems, files=files)))
    return Loaded(batches=batches, skipped=skipped)


# What a batch document says at the top of a file that is not valid YAML: such a file is
# a batch being edited, and its syntax error is reported rather than skipped.
_CLAIM_LINE = re.compile(
    r"""^(kind:\s*["']?Batch["']?\s*(#.*)?|apiVersion:\s*["']?mlgen\.io/.*)$"""
)


def claims_batch(text: str) -> bool:
    """Whether some document of the text is meant as a batch: its kind is Batch or its
    apiVersion is mlgen's (so `kind: Bacth` under mlgen's apiVersion still fails)."""
    try:
        # Composing builds the node graph without expanding aliases: safe on any input.
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except (yaml.YAMLError, RecursionError):
        return any(_CLAIM_LINE.match(line) for line in text.splitlines())
    for node in documents:
        if not isinstance(node, yaml.MappingNode):
            continue
        for key, value in node.value:
            if not isinstance(value, yaml.ScalarNode):
                continue
            if (key.value, value.value) == ("kind", "Batch") or (
                key.value == "apiVersion" and str(value.value).startswith("mlgen.io/")
            ):
                return True
    return False


def display_name(path: Path) -> str:
    """The path as headers and errors show it: relative to the working directory when
    inside it (no machine paths in committed files), else the bare file name."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


def load_text(text: str, *, source: str) -> tuple[list[spec.Batch], list[str]]:
    """Parse every document of one file; return the batches and the problems."""
    loader = _Loader(text)
    documents: list[tuple[yaml.Node, object]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                limits.check_document(node, source=source)  # before anything expands aliases
                documents.append((node, loader.construct_document(node)))
    except SpecError as e:
        return [], [str(e)]
    except RecursionError:
        return [], [
            f"{source}: nested more than {limits.MAX_DEPTH} levels deep; no batch "
            "field is, so fix the structure"
        ]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        return [], [f"{source}{where}: not valid YAML: {problem}; fix the syntax"]
    finally:
        loader.dispose()
    if not documents:
        return [], [f"{source}: holds no batch; add a document with kind: Batch"]
    batches: list[spec.Batch] = []
    problems: list[str] = []
    for number, (node, data) in enumerate(documents, start=1):
        where = source if len(documents) == 1 else f"{source} (document {number})"
        lines, duplicates = places.index_lines(node)
        for path, line in duplicates:
            problems.append(f"{source}:{line}: {path}: key appears twice in one mapping; keep one")
        if not isinstance(data, dict):
            problems.append(
                f"{where}:{node.start_mark.line + 1}: a batch must be a mapping "
                "with apiVersion, kind, metadata and spec"
            )
            continue
        expansion = matrix.expand(data)  # `matrix:` entries -> one job per combination
        found = places.Places(lines=lines, entries=tuple(p for p, _ in expansion.origins))
        if expansion.problems:
            problems.extend(
                f"{found.at(source, path)}: {text}" for path, text in expansion.problems
            )
            continue
        try:
            model = spec.BatchModel.model_validate(expansion.document)
        except pydantic.ValidationError as e:
            problems.extend(_describe(expansion.fold(e.errors()), source=source, located=found))
            continue
        batch, unresolved = spec.resolve(model, source=source, located=found)
        # A problem of a field 50 jobs inherit is one problem, at the line that wrote it.
        problems.extend(
            places.collapse(
                (found.at(source, found.origin(path)), text) for path, text in unresolved
            )
        )
        if not unresolved:
            batches.append(batch)
    return batches, problems


def _describe(errors: Iterable[object], *, source: str, located: places.Places) -> list[str]:
    out = []
    for error in errors:
        assert isinstance(error, dict)
        path = _path(error["loc"])
        kind = error["type"]
        text = messages.plain(error, root=spec.BatchModel)  # plain English, did-you-mean
        # A model-level check names its own sub-path (e.g. jobs[4].name) at its front.
        if kind == "value_error" and text.startswith(("jobs[", "variants")):
            sub, _, text = text.partition(" ")
            path = f"{path}.{sub}" if path else sub
            path = path.split(" ")[0]
        out.append(f"{located.at(source, path)}: {text}")
    return out


def _path(loc: Sequence[object]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path

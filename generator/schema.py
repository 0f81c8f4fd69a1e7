"""The batch format as a JSON Schema, for editors (completion, inline errors).

The committed file `mlgen/schema/batch.schema.json` is generated from the models in
`mlgen.spec`; a test fails when the two drift. Regenerate with
`mlgen schema -o generator/schema/batch.schema.json`.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from mlgen import matrix, spec

SCHEMA_ID = "https://mlgen.io/schema/v1alpha1/batch.schema.json"


def json_schema() -> dict[str, object]:
    body = spec.BatchModel.model_json_schema(by_alias=True)
    # A job entry is a job or a matrix of jobs (expanded before validation, see matrix.py).
    entry = matrix.MatrixEntry.model_json_schema(by_alias=True)
    definitions: dict[str, Any] = body["$defs"]
    definitions.update(entry.pop("$defs", {}))
    definitions["MatrixEntry"] = entry
    jobs = definitions["Spec"]["properties"]["jobs"]
    jobs["items"] = {"anyOf": [jobs["items"], {"$ref": "#/$defs/MatrixEntry"}]}
    return _one_line(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_ID,
            "title": "mlgen Batch",
            **body,
        }
    )


def _one_line(node: dict[str, Any]) -> dict[str, Any]:
    """The schema with each description on one line: the docstrings they come from wrap at
    the source's width, and an editor's hover wraps text to its own."""
    return {key: _value(key, value) for key, value in node.items()}


def _value(key: str, value: Any) -> Any:
    if key == "description" and isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, dict):
        return _one_line(value)
    if isinstance(value, list):
        return [_value("", item) for item in value]
    return value


def text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def committed() -> str:
    return resources.files("mlgen").joinpath("schema/batch.schema.json").read_text("utf-8")

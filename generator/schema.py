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
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mlgen Batch",
        **body,
    }


def text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def committed() -> str:
    return resources.files("mlgen").joinpath("schema/batch.schema.json").read_text("utf-8")

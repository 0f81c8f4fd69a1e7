"""The apply-patch body mlgen sends: JSON that a YAML 1.1 decoder (the API server's)
reads back as exactly the same strings — astral characters, NEL and U+2028 included."""

from __future__ import annotations

import yaml

from mlgen import kube

from .test_delivery import ENV, HOSTILE


def test_apply_body_reads_back_exactly_as_yaml_and_is_ascii() -> None:
    obj = {
        "data": {f"k{i}": v for i, v in enumerate([*HOSTILE, *ENV.values()])},
        "tricky": ["🚀", "\\ud83d\\ude80", "\\🚀", "\\\\🚀", "\U0010ffff", "\x85\u2029"],
    }
    body = kube.apply_body(obj)
    assert body.isascii()
    assert yaml.safe_load(body.decode()) == obj
    # The API server refuses surrogate escapes (400): astral characters use \U escapes.
    assert kube.apply_body({"v": "🚀"}) == b'{"v": "\\U0001f680"}'

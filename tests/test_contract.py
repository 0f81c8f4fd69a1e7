"""The contract between rendering and running (docs/design.md): every key is spelled once
in the package, the KWOK stages read the names the renderers write, and mlgen's own
labels always win."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mlgen import contract, variants
from mlgen.cluster import local

from .conftest import batch_doc, jobs_and_configs

PACKAGE = Path(__file__).resolve().parent.parent / "generator"
KEYS = {
    name: value
    for name, value in vars(contract).items()
    if name.isupper() and isinstance(value, str) and "/" in value
}


def test_each_contract_key_is_spelled_once_in_the_package() -> None:
    stages = local.stages_file().resolve()
    for name, value in KEYS.items():
        spelled = [
            p
            for p in PACKAGE.rglob("*.py")
            if p.name != "contract.py"
            and re.search(rf"[\"']{re.escape(value)}[\"']", p.read_text(encoding="utf-8"))
        ]
        assert not spelled, f"contract.{name} ({value}) is retyped in {spelled}"
    assert stages.is_file()


def test_the_kwok_stages_read_the_keys_the_renderers_write() -> None:
    text = local.stages_file().read_text(encoding="utf-8")
    read = set(re.findall(r'annotations\["([^"]+)"\]', text))
    read |= set(re.findall(r'labels\["([^"]+)"\]', text))
    assert read, "the stages read no annotation at all?"
    unknown = read - set(KEYS.values())
    assert not unknown, f"the stages read keys the contract lacks: {unknown}"
    assert {
        contract.EXPECTED_DURATION,
        contract.EXPECTED_DURATIONS,
        contract.SIMULATE_FAILURE,
    } <= read
    for stage in yaml.safe_load_all(text):
        assert stage["apiVersion"].startswith("kwok.x-k8s.io/")


def test_mlgen_labels_win_and_every_job_says_its_variant() -> None:
    for obj in jobs_and_configs(batch_doc(simulated=True)):
        labels = obj["metadata"]["labels"]
        assert labels[contract.MANAGED_BY] == contract.MANAGER
        assert labels[contract.PART_OF] == "demo"
        if obj["kind"] == "Job":
            strategy = obj["metadata"]["annotations"][contract.STRATEGY]
            assert variants.get(strategy).directory == labels[contract.VARIANT]


def test_the_registry_names_every_variant_module() -> None:
    for entry in variants.REGISTRY:
        unit = variants.get(entry.name)
        assert (unit.name, unit.directory) == (entry.name, entry.directory)
        assert unit.ends[0] == "Complete"

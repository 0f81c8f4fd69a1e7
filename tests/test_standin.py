"""Stand-in containers: what `standin.place` changes in a rendered Job (and nothing else),
and what the stand-in shell then does, run here under busybox sh the way a kubelet would
start it (Kubernetes turns `$$` back into `$`)."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest

from mlgen import contract, pod, render, source
from mlgen.cluster import image, node
from mlgen.conformance import standin

from .test_delivery import ENV, HOSTILE

busybox = pytest.mark.skipif(not image.BUSYBOX.is_file(), reason="needs busybox-static")

BATCH = """\
apiVersion: mlgen.io/v1alpha1
kind: Batch
metadata: {name: tune}
spec:
  simulated: true
  defaults:
    image: ghcr.io/acme/train:1.4.2
    command: [python, -m, train]
    resources:
      requests: {cpu: "8", memory: 64Gi}
      limits: {nvidia.com/gpu: 1}
    nodeSelector: {pool: a100}
    tolerations: [{key: nvidia.com/gpu, operator: Exists}]
    expectedDuration: 2h
  jobs:
    - {name: a, args: [--lr, "$(HOME) 1e-3"]}
    - {name: b, args: [--lr, "1e-4"], expectedDuration: 30m, simulate: {exitCode: 3}}
    - {name: c, args: [--lr, "1e-5"], simulate: {exitCode: 4}}
"""


def rendered(variant: str, strategy: str = "waves") -> list[dict[str, Any]]:
    text = BATCH.replace(
        "simulated: true", f"simulated: true\n  sequential: {{strategy: {strategy}}}"
    )
    (batch,), problems = source.load_text(text, source="tune.yaml")
    assert not problems
    import yaml

    files = render.render_batch(batch, only=(variant,))
    return [
        d
        for path, text in sorted(files.items())
        if not path.endswith("kustomization.yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]


KIND = standin.Placement(image="busybox:1.36.1", nodes=("n1", "n2"))
REAL_NODE = standin.Placement(
    image=image.PROBE,
    pull_never=True,
    node_name=node.NAME,
    toleration={**node.TAINT, "operator": "Equal"},
)


def test_place_changes_only_image_program_requests_and_placement() -> None:
    (job, *_) = [o for o in rendered("sequential") if o["kind"] == "Job"]
    original = copy.deepcopy(job)
    placed = standin.place(job, REAL_NODE)
    assert job == original, "the input is left alone"
    got, want = placed["spec"]["template"]["spec"], original["spec"]["template"]["spec"]
    (main,), (before,) = got["containers"], want["containers"]
    assert main["image"] == image.PROBE and main["imagePullPolicy"] == "Never"
    assert main["command"][:4] == pod.literals(["/bin/sh", "-c", standin.SCRIPT, standin.MARK])
    assert main["command"][4:] == ["7200", "", "python", "-m", "train"]
    assert main["args"] == before["args"]
    assert main["resources"]["requests"] == {"cpu": "50m", "memory": "32Mi"}
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert got["nodeSelector"] == {"pool": "a100", "kubernetes.io/hostname": node.NAME}
    assert got["tolerations"][-1] == {**node.TAINT, "operator": "Equal"}
    # Everything else as rendered: volumes, security context, env, metadata, Job spec.
    for key in set(want) - {"containers", "nodeSelector", "tolerations"}:
        assert got[key] == want[key], key
    for key in set(before) - {"image", "command", "resources"}:
        assert main[key] == before[key], key
    assert placed["metadata"] == original["metadata"]
    on_kind = standin.place(original, KIND)["spec"]["template"]["spec"]
    assert "imagePullPolicy" not in on_kind["containers"][0]
    assert on_kind["nodeSelector"] == {"pool": "a100"}
    assert on_kind["tolerations"] == want["tolerations"]
    config = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert standin.place(config, KIND) == config


def test_an_indexed_job_keeps_its_entrypoint_and_configmap() -> None:
    objects = rendered("parallel")
    (job,) = [o for o in objects if o["kind"] == "Job"]
    placed = standin.place(job, KIND)
    (main,) = placed["spec"]["template"]["spec"]["containers"]
    before = job["spec"]["template"]["spec"]["containers"][0]
    assert main["command"] == before["command"], "the entrypoint still picks the index"
    assert main["args"][6:] == before["args"]
    assert main["args"][4:6] == ["7200,1800,7200", ",3,4"]
    assert main["env"][-1]["name"] == standin.FAILURES_ENV
    assert contract.INDEX_FAILURE_COUNT in main["env"][-1]["valueFrom"]["fieldRef"]["fieldPath"]


def run_standin(
    command: list[str], args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    """Start a placed container the way a kubelet does: `$$` is `$` again."""
    argv = [a.replace("$$", "$") for a in [*command, *args]]
    return subprocess.run(
        [str(image.BUSYBOX), *argv],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        timeout=30,
        check=False,
    )


def placed_indexed(seconds: str, failure: str) -> dict[str, Any]:
    (job,) = [o for o in rendered("parallel") if o["kind"] == "Job"]
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    annotations.pop(contract.EXPECTED_DURATION, None)
    annotations[contract.EXPECTED_DURATIONS] = seconds
    annotations[contract.SIMULATE_FAILURE] = failure
    main: dict[str, Any] = standin.place(job, KIND)["spec"]["template"]["spec"]["containers"][0]
    return main


@busybox
def test_the_standin_records_the_program_argv_and_env_byte_for_byte() -> None:
    (job, *_) = [o for o in rendered("sequential") if o["kind"] == "Job"]
    (main,) = standin.place(job, KIND)["spec"]["template"]["spec"]["containers"]
    main["command"][4] = "0"  # no sleep here
    done = run_standin(main["command"], pod.literals(HOSTILE), ENV)  # as rendered
    assert done.returncode == 0, done.stderr
    report = standin.recorded(done.stdout.decode())
    assert report.args == ["python", "-m", "train", *HOSTILE]
    assert {k: report.env.get(k) for k in ENV} == ENV


@busybox
@pytest.mark.parametrize(
    ("index", "failures", "code"),
    [("0", "0", 0), ("1", "0", 3), ("1", "5", 3), ("2", "0", 4), ("2", "1", 4), ("2", "2", 0)],
)
def test_the_standin_exits_with_the_simulated_code_by_index_and_attempt(
    index: str, failures: str, code: int
) -> None:
    main = placed_indexed("0s,0s,0s", ",3,4/2")
    program = [*main["args"][:6], "true"]  # the entrypoint would exec this
    done = run_standin(program, [], {"JOB_COMPLETION_INDEX": index, standin.FAILURES_ENV: failures})
    assert done.returncode == code, done.stderr
    assert standin.FAILURES_ENV not in standin.recorded(done.stdout.decode()).env


@busybox
def test_the_standin_sleeps_its_own_index_duration() -> None:
    import time

    main = placed_indexed("0s,2s,0s", "")
    started = time.monotonic()
    done = run_standin([*main["args"][:6], "true"], [], {"JOB_COMPLETION_INDEX": "1"})
    assert done.returncode == 0 and 1.9 < time.monotonic() - started < 10
    started = time.monotonic()
    run_standin([*main["args"][:6], "true"], [], {"JOB_COMPLETION_INDEX": "2"})
    assert time.monotonic() - started < 1.5


def test_every_change_is_listed_once_for_the_report() -> None:
    lines = standin.describe()
    assert lines[0].startswith("stand-in containers:")
    assert [line.split(":")[0].strip("- ").strip() for line in lines[1:]] == [
        "image",
        "program",
        "env",
        "resources",
        "placement (the local real node only)",
    ]


def test_a_limit_without_a_request_is_capped_too() -> None:
    job = {
        "kind": "Job",
        "spec": {
            "template": {
                "metadata": {},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "x",
                            "command": ["train"],
                            "resources": {"limits": {"memory": "64Gi", "nvidia.com/gpu": "1"}},
                        }
                    ]
                },
            }
        },
    }
    (main,) = standin.place(job, KIND)["spec"]["template"]["spec"]["containers"]
    assert main["resources"] == {
        "limits": {"memory": "64Gi", "nvidia.com/gpu": "1"},
        "requests": {"memory": "32Mi"},
    }

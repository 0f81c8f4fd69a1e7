"""`mlgen apply`: apply a rendered variant directory wave by wave and wait."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgen import gantt, terminal, timeline, units
from mlgen.cli import extras
from mlgen.cli.common import err, reported
from mlgen.errors import UsageError


@extras.needs_cluster("apply")
def apply_command(
    directory: Annotated[
        Path,
        typer.Argument(
            help="A rendered variant directory, e.g. manifests/resnet-sweep/sequential.",
            show_default=False,
        ),
    ],
    timeout: Annotated[
        str,
        typer.Option(help="Give up waiting after this long (30s, 20m, 2h); the Jobs keep running."),
    ] = "24h",
    pending_timeout: Annotated[
        str,
        typer.Option(
            help="Fail when a pod has been Pending this long (seconds, or 30s, 10m) for a "
            "reason the scheduler or kubelet gives, while no pod of the run runs, starts "
            "or ends; 0: no bound (only --timeout). Pods queued behind running ones, or "
            "pulling their image, are not stuck.",
        ),
    ] = "10m",
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."),
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
    timeline_out: Annotated[
        Path | None,
        typer.Option(
            "--timeline",
            help="Also write the run's timeline JSON here (and an SVG chart beside it).",
        ),
    ] = None,
) -> None:
    """Server-side apply (field manager mlgen) in wave order, waiting for each wave.

    Configuration first, then each sync wave: apply, wait for Complete, stop at Failed
    (unless the batch says onFailure: continue). While it waits, it says why pods do
    not run, in the cluster's words, once each time the reason appears or changes; a
    failed Job's line says how its pod ended (exit code, OOMKilled, DeadlineExceeded).
    Exit 0 when every Job completed, 1 when one failed or stayed Pending past
    --pending-timeout, 2 for usage or connection errors. Re-running on a finished
    batch changes nothing and exits 0.
    """
    # Here, not at the top: `mlgen apply --help` works without the Kubernetes client.
    from mlgen import apply, kube

    with reported():
        try:
            seconds = units.parse_duration(timeout)
        except ValueError as e:
            raise UsageError(f"--timeout: {e}") from e
        try:
            # Bare seconds too: `--pending-timeout 0` is how a user turns the bound off.
            pending = (
                int(pending_timeout)
                if pending_timeout.isascii() and pending_timeout.isdigit()
                else units.parse_duration(pending_timeout)
            )
        except ValueError as e:
            raise UsageError(f"--pending-timeout: {e}, or seconds (0: no bound)") from e
        objects = apply.load_dir(directory)
        client = kube.connect(kubeconfig=kubeconfig, context=context)
        with err.status("applying ...") as status:

            def progress(line: str) -> None:
                err.print(line, markup=False)
                status.update(terminal.safe(line))

            try:
                outcome = apply.run(
                    client,
                    objects,
                    timeout=seconds,
                    progress=progress,
                    pending_timeout=pending,
                )
            finally:
                if timeline_out is not None:
                    chart = gantt.save(timeline.collect_for(client, objects), timeline_out)
                    err.print(f"timeline: {timeline_out} and {chart}")
        err.print(f"done: {len(outcome.jobs)} job(s) complete")

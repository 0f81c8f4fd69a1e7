"""mlgen: batches of ML jobs -> GitOps-ready Kubernetes manifests, proven on a cluster.

The core (spec, render, tree, apply, timeline, cluster) never imports typer or rich;
`mlgen.cli` is the thin command line over it, `mlgen.conformance` the pytest plugin.
"""

# The distribution on PyPI ("mlgen" there is an unrelated project); it installs the
# `mlgen` command and this package. The two cannot share one environment: both are
# imported as `mlgen`.
DISTRIBUTION = "mlgen-gitops"

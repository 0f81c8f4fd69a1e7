"""mlgen: batches of ML jobs -> GitOps-ready Kubernetes manifests, proven on a cluster.

The core (spec, render, tree, apply, timeline, cluster) never imports typer or rich;
`mlgen.cli` is the thin command line over it, `mlgen.conformance` the pytest plugin.
"""

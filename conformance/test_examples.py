"""The generic conformance test of the mlgen plugin, run on every example batch."""

from mlgen.conformance.suite import test_batch_conforms  # noqa: F401

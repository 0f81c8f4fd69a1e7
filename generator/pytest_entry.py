"""The `pytest11` entry point: mlgen's conformance plugin when the `cluster` extra is
installed, else a stand-in that only explains how to get it.

pytest loads every installed plugin in every session, so a core install of mlgen (render
and validate only, no Kubernetes client) must not break an unrelated test run.
"""

from __future__ import annotations

import pytest

try:
    import kubernetes  # noqa: F401  (the `cluster` extra)
except ImportError:
    _HAVE_CLIENT = False
else:
    _HAVE_CLIENT = True

if _HAVE_CLIENT:
    from mlgen.conformance import plugin as _plugin

    # pytest finds hooks and fixtures among a plugin module's attributes: take them all.
    globals().update({k: v for k, v in vars(_plugin).items() if not k.startswith("__")})
else:
    _MISSING = (
        "mlgen's conformance plugin needs the Kubernetes client: "
        "pip install 'mlgen-gitops[cluster]'"
    )

    @pytest.fixture(scope="session")
    def mlgen_cluster() -> None:
        """Stands in for the conformance plugin's cluster: says what to install."""
        pytest.fail(_MISSING, pytrace=False)

"""Modules imported on first use, for core modules that only sometimes need an extra.

`timeline` describes runs (core: the report and the checks read it) but also collects
them from a cluster (the `cluster` extra: the Kubernetes client). Importing the client
only when a collect function runs keeps `mlgen render` working on a core install.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class Module:
    """Stands for the module `name`; imports it at the first attribute read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

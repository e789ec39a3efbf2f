"""The process layer's fixture, as the native tier sets it up (tests/integration/process)."""
from __future__ import annotations

from tests.integration.process.conftest import env

__all__ = ["env"]

"""The real engine, as the native tier sets it up (tests/integration/engine/conftest.py)."""
from __future__ import annotations

from tests.integration.engine.conftest import engine

__all__ = ["engine"]

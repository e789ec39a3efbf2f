"""The Engine API contract (tests/engine_contract.py) against the real engine."""
from __future__ import annotations

import pytest

from runtime.engine import Engine
from tests.engine_contract import CHECKS, Check


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
async def test_engine_keeps_the_contract(engine: Engine, check: Check) -> None:
    await check(engine)

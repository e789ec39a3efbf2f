"""The Engine API contract (tests/engine_contract.py) against the unit tests' fake engine."""
from __future__ import annotations

import pytest

from tests.engine_contract import CHECKS, Check
from tests.unit.daemon.fake_engine import FakeEngine


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
async def test_fake_engine_keeps_the_contract(engine: FakeEngine, check: Check) -> None:
    await check(engine)

"""composerd's code identity (runtime.identity), the daemon's report of it (ping header,
/version's `identity` and `busy`) and the CLI's decision on a daemon running other code
(runtime.codecheck)."""
from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
from pathlib import Path

import pytest

from runtime import codecheck, identity
from runtime.client import Client, Stream
from runtime.quickclient import QuickClient, run_now
from runtime.rpc import API_VERSION
from tests.unit.daemon.fake_engine import FakeEngine

RUNTIME = Path(identity.__file__).resolve().parent


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the runtime package (its .py files): an "installed" code to change."""
    root = tmp_path / "runtime"
    shutil.copytree(RUNTIME, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def fresh(root: Path) -> str:
    identity.stat_signature.cache_clear()
    identity.content_signature.cache_clear()
    return identity.identity(root)


def test_identity_of_the_same_code_matches(tree: Path) -> None:
    theirs = fresh(tree)
    assert theirs.startswith(f"{API_VERSION}/")
    assert identity.same_code(theirs, tree)


def test_a_touched_file_is_the_same_code(tree: Path) -> None:
    theirs = fresh(tree)
    f = tree / "routes.py"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    identity.stat_signature.cache_clear()
    identity.content_signature.cache_clear()
    assert theirs.split("/")[2] != identity.stat_signature(tree)  # the cheap check differs
    assert identity.same_code(theirs, tree)  # the contents decide


def test_a_changed_added_or_removed_file_is_other_code(tree: Path) -> None:
    theirs = fresh(tree)
    (tree / "routes.py").write_text((tree / "routes.py").read_text() + "\n# upgraded\n")
    fresh(tree)
    assert not identity.same_code(theirs, tree)
    theirs = fresh(tree)
    (tree / "network" / "newmodule.py").write_text("X = 1\n")
    fresh(tree)
    assert not identity.same_code(theirs, tree)
    theirs = fresh(tree)
    (tree / "network" / "newmodule.py").unlink()
    fresh(tree)
    assert not identity.same_code(theirs, tree)


def test_no_or_malformed_identity_or_other_api_is_other_code(tree: Path) -> None:
    mine = fresh(tree)
    _, content, stat = mine.split("/")
    for theirs in (None, "", "garbage", f"{content}/{stat}", f"0/{content}/{stat}"):
        assert not identity.same_code(theirs, tree), theirs


def test_a_test_can_make_a_daemon_report_old_code() -> None:
    assert identity.reported({identity.TEST_ENV: "1/old/old"}) == "1/old/old"
    assert identity.reported({}) == identity.identity()


# ---------------------------------------------------------------- what composerd reports


async def test_ping_carries_the_identity_and_version_says_it_too(socket_path: Path, client: Client) -> None:
    quick = QuickClient(socket_path)  # it blocks: from a thread, the loop serves meanwhile
    try:
        assert await asyncio.to_thread(lambda: run_now(quick.ping()))
        assert quick.runs_this_code()
    finally:
        run_now(quick.close())
    v = await client.version()
    assert v["identity"] == identity.identity()
    assert v["busy"] == 0


async def test_an_old_daemon_is_told_by_the_quick_client(engine: FakeEngine, short_tmp: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.daemon import serve

    monkeypatch.setenv(identity.TEST_ENV, f"{API_VERSION}/0123/4567")
    runner = await serve(engine, short_tmp / "old.sock")
    try:
        quick = QuickClient(short_tmp / "old.sock")
        assert await asyncio.to_thread(lambda: run_now(quick.ping()))
        assert not quick.runs_this_code()
        run_now(quick.close())
    finally:
        await runner.cleanup()


async def test_busy_counts_streams_being_served_not_the_look(client: Client, engine: FakeEngine) -> None:
    from runtime.types import ContainerSpec

    info = await client.create_container(ContainerSpec(name="busy1", image="busybox:latest"))
    await client.start_container(info.id)
    stream: Stream[object] = client.logs(info.id, follow=True)  # type: ignore[assignment]
    await stream.open()
    try:
        for _ in range(100):
            if (await client.version())["busy"] == 1:
                break
            await asyncio.sleep(0.01)
        assert (await client.version())["busy"] == 1
    finally:
        await stream.aclose()
    for _ in range(100):
        if (await client.version())["busy"] == 0:
            break
        await asyncio.sleep(0.01)
    assert (await client.version())["busy"] == 0


# ---------------------------------------------------------------- the restart decision

BG = ["/usr/bin/python3", "-m", "runtime.daemon", "--background", "--root", "/r", "--run", "/x"]


def test_an_idle_daemon_the_cli_started_is_restarted() -> None:
    plan = codecheck.decide({"pid": 42, "busy": 0}, held=[], euid=0, cmdline=BG)
    assert plan.restart
    assert "composerd (pid 42)" in plan.message and "restarted" in plan.message
    assert "\n" not in plan.message


def test_an_old_daemon_without_busy_is_judged_by_the_locks() -> None:
    assert codecheck.decide({"pid": 42}, held=[], euid=0, cmdline=BG).restart
    plan = codecheck.decide({"pid": 42}, held=["web"], euid=0, cmdline=BG)
    assert not plan.restart and "project web is locked" in plan.message


def test_a_busy_daemon_keeps_serving_and_the_line_says_the_fix() -> None:
    plan = codecheck.decide({"pid": 42, "busy": 2}, held=[], euid=0, cmdline=BG)
    assert not plan.restart
    assert "2 requests in flight" in plan.message and "sudo kill 42" in plan.message
    assert "\n" not in plan.message


def test_a_daemon_the_cli_did_not_start_is_its_owners() -> None:
    fg = ["/usr/bin/composerd", "--foreground"]
    plan = codecheck.decide({"pid": 7, "busy": 0}, held=[], euid=0, cmdline=fg)
    assert not plan.restart and "systemctl restart composerd" in plan.message
    assert not codecheck.decide({"pid": 7, "busy": 0}, held=[], euid=0, cmdline=None).restart


def test_only_root_restarts() -> None:
    plan = codecheck.decide({"pid": 42, "busy": 0}, held=[], euid=1000, cmdline=BG)
    assert not plan.restart and "only root" in plan.message and "sudo kill 42" in plan.message


def test_held_project_locks_are_seen_free_ones_not(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "free.lock").write_text("")
    (locks / "web.lock").write_text("")
    (locks / "notalock").write_text("")
    fd = os.open(locks / "web.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert codecheck.held_project_locks(tmp_path) == ["web"]
    finally:
        os.close(fd)
    assert codecheck.held_project_locks(tmp_path) == []
    assert codecheck.held_project_locks(tmp_path / "missing") == []


def test_cmdline_of_this_process_and_of_none() -> None:
    mine = codecheck.cmdline_of(os.getpid())
    assert mine and "pytest" in " ".join(mine)
    assert codecheck.cmdline_of(None) is None
    assert codecheck.cmdline_of(0) is None

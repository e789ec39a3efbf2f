"""`composer watch` without root: rule matching (ignore, include, .dockerignore, editors'
files, .git), the recursive inotify watcher on a temp tree, the debounce, how a batch is
planned and acted out (on an in-memory engine), and the tar a sync sends."""
from __future__ import annotations

import asyncio
import io
import os
import tarfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from composer.operations import Project, UpOptions
from composer.spec import LoadOptions, load_stack
from composer.watch import session as S
from composer.watch.inotify import TreeWatcher
from composer.watch.rules import Rule, bind_mounted
from composer.watch.session import WatchError, WatchSession, rules_of
from tests.unit.memengine import MemEngine

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def stack_at(tmp_path: Path, text: str) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    stack = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))
    return Project(stack, MemEngine())  # type: ignore[arg-type]


RULES = """
services:
  app:
    build: .
    develop:
      watch:
        - {path: ./src, action: sync, target: /app/src, ignore: ["*.log", cache/, "**/*.tmp"]}
        - {path: ./src/api, action: sync+restart, target: /srv/api, include: ["*.py"]}
        - {path: ./Dockerfile, action: rebuild}
        - {path: ./hooks, action: sync+exec, target: /hooks, exec: {command: reload}}
        - {path: ./conf, action: restart}
"""


def rules(tmp_path: Path, text: str = RULES, dockerignore: str = "") -> list[Rule]:
    if dockerignore:
        (tmp_path / ".dockerignore").write_text(dockerignore)
    p = stack_at(tmp_path, text)
    return rules_of(p, [], lambda line: None)


def test_a_path_maps_to_the_target_unless_ignored(tmp_path: Path) -> None:
    sync, api, rebuild, _, _ = rules(tmp_path, dockerignore="src/secret*\n")
    src = str(tmp_path / "src")
    m = sync.match(f"{src}/lib/a.js")
    assert m is not None and m.container == "/app/src/lib/a.js"
    assert sync.match(src).container == "/app/src"  # type: ignore[union-attr]
    for ignored in ("x.log", "cache/deep/x.js", "lib/y.tmp", "secret.txt", ".git/HEAD", "sub/.git/config",
                    ".a.js.swp", "a.js~", "4913", ".#a.js", ".idea/workspace.xml"):
        assert sync.match(f"{src}/{ignored}") is None, ignored
    assert sync.match(str(tmp_path / "other" / "a.js")) is None  # not under the rule's path
    assert api.match(f"{src}/api/h.py").container == "/srv/api/h.py"  # type: ignore[union-attr]
    assert api.match(f"{src}/api/v1.txt") is None  # include: *.py only
    # .dockerignore syntax, as Compose: `*` does not cross `/` (`**/*.py` would)
    assert api.match(f"{src}/api/v1/h.py") is None
    assert sync.match(f"{src}/lib/x.log") is not None
    assert rebuild.match(str(tmp_path / "Dockerfile")).container is None  # type: ignore[union-attr]


def test_an_ignored_tree_is_not_watched_unless_something_below_is_reincluded(tmp_path: Path) -> None:
    sync = rules(tmp_path)[0]
    src = tmp_path / "src"
    assert sync.skips_tree(str(src / "cache")) and sync.skips_tree(str(src / ".git"))
    assert not sync.skips_tree(str(src / "lib")) and not sync.skips_tree(str(src))
    text = RULES.replace('ignore: ["*.log", cache/, "**/*.tmp"]', 'ignore: ["cache", "!cache/keep"]')
    assert not rules(tmp_path, text)[0].skips_tree(str(src / "cache"))


def test_rules_are_checked_as_compose_checks_them(tmp_path: Path) -> None:
    with pytest.raises(WatchError, match="with action rebuild without a build context"):
        rules(tmp_path, "services: {a: {image: x, develop: {watch: [{path: ., action: rebuild}]}}}")
    with pytest.raises(WatchError, match="none of the selected services is configured for watch"):
        rules(tmp_path, "services: {a: {image: x}}")
    warned: list[str] = []
    p = stack_at(tmp_path, """
services:
  a:
    image: x
    volumes: [./src:/app/src]
    develop: {watch: [{path: ./src/x, action: sync, target: /t}, {path: ./other, action: restart}]}
""")
    assert bind_mounted(str(tmp_path / "src" / "x"), p.stack.services["a"]) == str(tmp_path / "src")
    kept = rules_of(p, [], warned.append)
    assert [r.spec.action for r in kept] == ["restart"]
    assert warned == [f"path '{tmp_path / 'src' / 'x'}' also declared by a bind mount volume, this "
                      "path won't be monitored!"]


def test_a_batch_is_grouped_as_compose_groups_it(tmp_path: Path) -> None:
    p = stack_at(tmp_path, RULES)
    s = WatchSession(p, rules_of(p, [], print), print, print)
    src = tmp_path / "src"
    batch = s.plan([str(src / "a.js"), str(src / "api" / "h.py"), str(src / "x.log"),
                    str(tmp_path / "Dockerfile"), str(tmp_path / "hooks" / "1"),
                    str(tmp_path / "hooks" / "2"), str(tmp_path / "conf" / "c")])
    assert batch.rebuild == {"app"} and batch.restart == {"app"}
    assert sorted(batch.syncs["app"]) == ["/app/src/a.js", "/app/src/api/h.py", "/hooks/1",
                                          "/hooks/2", "/srv/api/h.py"]
    assert [r.spec.action for r in batch.execs["app"]] == ["sync+exec"]  # once for both files


def test_expand_walks_new_directories_through_the_rule_and_deletes_what_is_gone(tmp_path: Path) -> None:
    sync = rules(tmp_path)[0]
    src = tmp_path / "src"
    (src / "new").mkdir(parents=True)
    (src / "new" / "a.js").write_text("a")
    (src / "new" / "b.tmp").write_text("ignored")
    (src / "new" / ".git").mkdir()
    (src / "new" / ".git" / "HEAD").write_text("ignored")
    os.symlink("a.js", src / "new" / "link")
    copies, deletes = S._expand([sync.match(str(src / "new")), sync.match(str(src / "gone"))])  # type: ignore[list-item]
    assert [c for _, c in copies] == ["/app/src/new", "/app/src/new/a.js", "/app/src/new/link"]
    assert deletes == ["/app/src/gone"]
    with S._tar(copies) as spool, tarfile.open(fileobj=io.BytesIO(spool.read())) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["app/src/new"].isdir() and members["app/src/new/link"].linkname == "a.js"
    st = os.stat(src / "new" / "a.js")
    a = members["app/src/new/a.js"]
    assert (a.size, a.uid, a.mode) == (1, st.st_uid, st.st_mode & 0o7777)


DEV = """
services:
  app:
    image: img
    develop:
      watch:
        - {path: ./src, action: sync+restart, target: /app}
        - {path: ./hooks, action: sync+exec, target: /hooks, exec: {command: reload, user: root}}
"""


def test_a_batch_syncs_then_restarts_then_execs_in_each_running_container(tmp_path: Path) -> None:
    p = stack_at(tmp_path, DEV)
    engine: MemEngine = p.engine  # type: ignore[assignment]
    out: list[str] = []
    run(p.up(UpOptions()))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("A")
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "h").write_text("H")
    s = WatchSession(p, rules_of(p, [], out.append), out.append, out.append)
    mark = len(engine.log)
    run(s.handle([str(tmp_path / "src" / "a.txt"), str(tmp_path / "src" / "gone"),
                  str(tmp_path / "hooks" / "h")]))
    assert [e for e in engine.log[mark:] if e[0] != "exec"] == [
        ("rm", "p-app-1:/app/gone"), ("put", "p-app-1:app/a.txt,hooks/h"),
        ("stop", "p-app-1"), ("start", "p-app-1")]
    assert (engine.execs[-1]["argv"], engine.execs[-1]["user"]) == (["reload"], "root")
    assert engine.files["app/a.txt"] == b"A"
    assert out == ['Syncing service "app" after 3 changes were detected', 'service(s) ["app"] restarted']


def test_a_rebuild_builds_recreates_only_that_service_and_prunes_the_old_image(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("""
services:
  db: {image: dbimg}
  app:
    build: .
    depends_on: [db]
    develop: {watch: [{path: ./src, action: rebuild}]}
""")
    stack = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))
    engine = MemEngine({"dbimg": "sha256:d"})
    p = Project(stack, engine)  # type: ignore[arg-type]
    run(p.up(UpOptions()))
    app_id = next(c.id for c in engine.containers.values() if c.name == "p-app-1")
    out: list[str] = []
    s = WatchSession(p, rules_of(p, [], out.append), out.append, out.append)
    run(s.handle([str(tmp_path / "src" / "main.c")]))
    assert engine.built == ["p-app", "p-app"]
    assert app_id not in engine.containers  # recreated, from the new image
    assert [n for v, n in engine.log if v == "create"].count("p-db-1") == 1  # db untouched
    assert ("rmi", "sha256:built-1") in engine.log
    assert out == ['Rebuilding service(s) ["app"] after changes were detected...',
                   'service(s) ["app"] successfully built']


async def _settle(events: list[str], until: int, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(events) < until and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def test_tree_watcher_follows_new_directories_files_and_roots_that_appear(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        top, later, single = tmp_path / "top", tmp_path / "later" / "deep", tmp_path / "f.env"
        top.mkdir()
        (top / "node_modules").mkdir()
        single.write_text("A=1")
        w = TreeWatcher([str(top), str(later), str(single)], seen.append,
                        skip_dir=lambda p: p.endswith("node_modules"))
        w.start()
        try:
            assert w.watch_count == 2  # top, and tmp_path for the file and the missing root
            (top / "a").mkdir()
            (top / "a" / "b").mkdir()  # may be made before the watch on a/ exists: walked
            (top / "a" / "b" / "x.txt").write_text("x")
            await _settle(seen, 3)
            (top / "node_modules" / "m.js").write_text("skipped")
            later.mkdir(parents=True)  # the missing root appears
            (later / "y.txt").write_text("y")
            tmp = tmp_path / "f.env.tmp"
            tmp.write_text("A=2")
            os.rename(tmp, single)  # an editor's save of a file root
            await _settle(seen, 6)
            (top / "a" / "b" / "x.txt").unlink()
            await asyncio.sleep(0.1)
        finally:
            w.close()
        assert w.fd == -1
        return seen

    seen = set(run(scenario()))
    top = tmp_path / "top"
    assert {str(top / "a"), str(top / "a" / "b"), str(top / "a" / "b" / "x.txt"),
            str(tmp_path / "later" / "deep" / "y.txt"), str(tmp_path / "f.env")} <= seen
    assert not any("node_modules" in p for p in seen)
    assert str(tmp_path / "f.env.tmp") not in seen  # only the file root, not its neighbours


def test_a_burst_of_changes_is_one_batch(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, float]:
        p = stack_at(tmp_path, DEV)
        s = WatchSession(p, rules_of(p, [], print), print, print)
        batches: list[list[str]] = []

        async def handle(paths: list[str]) -> None:
            batches.append(list(paths))

        s.handle = handle  # type: ignore[method-assign]
        task = asyncio.ensure_future(s.run())
        await asyncio.sleep(0.05)
        t0 = asyncio.get_running_loop().time()
        for i in range(5):
            s._changed(f"/x/{i}")
            await asyncio.sleep(0.005)
        await asyncio.wait_for(s.synced.wait(), 2)
        elapsed = asyncio.get_running_loop().time() - t0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert batches == [[f"/x/{i}" for i in range(5)]]
        return len(batches), elapsed

    count, elapsed = run(scenario())
    assert count == 1 and elapsed < S.LONGEST + 0.2

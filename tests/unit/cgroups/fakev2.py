"""The cgroup v2 side of the fake tree: what the kernel does, and refuses, on cgroupfs.

State lives in the files of a temp dir, as the kernel shows it; this class only adds what
the kernel does on its own and the refusals:

- a controller's interface files exist in a cgroup only while its parent's
  cgroup.subtree_control enables it (they appear and vanish with it, values reset);
  cgroup.controllers is the parent's subtree_control;
- cgroup.subtree_control takes "+name"/"-name": EINVAL for a bad token or unknown name,
  ENOENT for a controller the cgroup is not offered, EBUSY to disable one a child still
  enables, EBUSY to enable a domain controller (memory, io) in a cgroup that has processes,
  EOPNOTSUPP in a thread root (processes plus threaded controllers on);
- no internal processes: writing cgroup.procs of a cgroup whose subtree_control enables
  domain controllers (or, with threaded ones only, that has populated children) is EBUSY;
- rmdir: EBUSY while the cgroup has processes or child cgroups;
- values are parsed as the kernel does (kernelvals.py) and read back in its format;
  read-only files refuse writes (EINVAL: kernfs has no write op for them), files of
  controllers that are off do not exist;
- cgroup.events: populated (processes here or below) and frozen (cgroup.freeze here or in
  an ancestor) are computed on every read. Freezing changes state only: real processes are
  not stopped (the host tier freezes for real); cgroup.kill SIGKILLs every process below.
Writes to a file the fake does not model raise AssertionError, so a test cannot pass on
behaviour nobody checked against the kernel.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from pathlib import Path

from tests.unit.cgroups import kernelvals as kv

ORDER = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")  # kernel ssid order
DOMAIN = {"io", "memory", "hugetlb", "rdma", "misc"}  # not threaded: no internal processes
ALL = " ".join(ORDER)

CORE = {
    "cgroup.controllers": "",
    "cgroup.subtree_control": "",
    "cgroup.procs": "",
    "cgroup.events": "",  # computed on read
    "cgroup.freeze": "0",
    "cgroup.kill": "",
    "cgroup.type": "domain",
    "cgroup.threads": "",
    "cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}
CONTROLLER_FILES: dict[str, dict[str, str]] = {
    "memory": {
        "memory.max": "max",
        "memory.high": "max",
        "memory.low": "0",
        "memory.min": "0",
        "memory.swap.max": "max",
        "memory.current": "0",
        "memory.peak": "0",
        "memory.swap.current": "0",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        "memory.stat": "anon 0\nfile 0\n",
    },
    "cpu": {"cpu.max": "max 100000", "cpu.weight": "100"},
    "pids": {"pids.max": "max", "pids.current": "0", "pids.events": "max 0\n"},
    "io": {"io.weight": "default 100", "io.stat": ""},
    "cpuset": {
        "cpuset.cpus": "",
        "cpuset.mems": "",
        "cpuset.cpus.effective": "",  # the parent's, set at creation
        "cpuset.mems.effective": "",
    },
}
READ_ONLY = {
    "cgroup.controllers", "cgroup.events", "cgroup.stat", "cpu.stat", "memory.current",
    "memory.peak", "memory.swap.current", "memory.events", "memory.stat", "pids.current",
    "pids.events", "io.stat", "cpuset.cpus.effective", "cpuset.mems.effective",
}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _fail(code: int, path: Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


class V2Kernel:
    def __init__(self, root: Path, controllers: str = ALL, cpus: int = 4, mems: int = 1) -> None:
        self.root = root
        self.cpus = set(range(cpus))
        self.mems = set(range(mems))
        root.mkdir(parents=True, exist_ok=True)
        files = {
            "cgroup.controllers": controllers,
            "cgroup.subtree_control": "",
            "cgroup.procs": "",
            "cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n",
            "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
        }
        if "cpuset" in controllers.split():
            files["cpuset.cpus.effective"] = kv.format_list(self.cpus)
            files["cpuset.mems.effective"] = kv.format_list(self.mems)
        for name, text in files.items():
            (root / name).write_text(text)

    # -- helpers ---------------------------------------------------------------------------
    def _is_root(self, d: Path) -> bool:
        return d == self.root

    @staticmethod
    def _words(path: Path) -> list[str]:
        return path.read_text().split()

    def _children(self, d: Path) -> list[Path]:
        return [p for p in d.iterdir() if p.is_dir()]

    def _procs(self, d: Path) -> list[int]:
        return [int(p) for p in (d / "cgroup.procs").read_text().split() if alive(int(p))]

    def _populated(self, d: Path) -> bool:
        return bool(self._procs(d)) or any(self._populated(c) for c in self._children(d))

    def _frozen(self, d: Path) -> bool:
        while not self._is_root(d):
            if (d / "cgroup.freeze").read_text().strip() == "1":
                return True
            d = d.parent
        return False

    def _can_be_thread_root(self, d: Path) -> bool:
        """kernel: no populated child cgroups and no domain controller in subtree_control."""
        if any(self._populated(c) for c in self._children(d)):
            return False
        return not DOMAIN & set(self._words(d / "cgroup.subtree_control"))

    def _thread_root(self, d: Path) -> bool:
        """kernel cgroup_is_thread_root: processes and threaded controllers on."""
        on = set(self._words(d / "cgroup.subtree_control"))
        return bool(self._procs(d)) and bool(on - DOMAIN)

    def _controller_files(self, d: Path, controller: str) -> dict[str, str]:
        files = dict(CONTROLLER_FILES.get(controller, {}))
        if controller == "cpuset":
            files["cpuset.cpus.effective"] = (d.parent / "cpuset.cpus.effective").read_text()
            files["cpuset.mems.effective"] = (d.parent / "cpuset.mems.effective").read_text()
        return files

    # -- the syscalls -------------------------------------------------------------------------
    def mkdir(self, path: Path) -> None:
        if not path.parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        os.mkdir(path)  # FileExistsError as the kernel's EEXIST
        enabled = (path.parent / "cgroup.subtree_control").read_text()
        files = {**CORE, "cgroup.controllers": enabled}
        for c in enabled.split():
            files.update(self._controller_files(path, c))
        for name, text in files.items():
            (path / name).write_text(text)

    def rmdir(self, path: Path) -> None:
        if not path.is_dir() or self._is_root(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        if self._procs(path) or self._children(path):
            raise _fail(errno.EBUSY, path)
        for p in path.iterdir():
            p.unlink()
        os.rmdir(path)

    def read(self, path: Path, raw: Callable[[Path], str]) -> str:
        text = raw(path)
        d = path.parent
        if path.name == "cgroup.procs":
            return "".join(f"{p}\n" for p in self._procs(d))
        if path.name == "cgroup.events" and not self._is_root(d):
            return f"populated {int(self._populated(d))}\nfrozen {int(self._frozen(d))}\n"
        return text

    def write(self, path: Path, value: str) -> None:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        name, d = path.name, path.parent
        if name in READ_ONLY:
            raise _fail(errno.EINVAL, path)
        try:
            handler = getattr(self, "_w_" + name.replace(".", "_"))
        except AttributeError:
            raise AssertionError(f"the fake cgroupfs does not model writes to {name}") from None
        handler(path, d, value)

    def set_limit(self, path: Path, text: str) -> None:
        path.write_text(text)

    # -- write handlers -------------------------------------------------------------------------
    def _store(self, path: Path, parse: Callable[[str], str], value: str) -> None:
        try:
            text = parse(value)
        except OSError as e:
            raise _fail(e.errno or errno.EINVAL, path) from None
        path.write_text(text)

    def _w_memory_max(self, path: Path, d: Path, value: str) -> None:
        self._store(path, kv.page_counter, value)

    _w_memory_high = _w_memory_low = _w_memory_min = _w_memory_swap_max = _w_memory_max

    def _w_pids_max(self, path: Path, d: Path, value: str) -> None:
        self._store(path, kv.pids_max, value)

    def _w_cpu_max(self, path: Path, d: Path, value: str) -> None:
        self._store(path, lambda v: kv.cpu_max(v, path.read_text()), value)

    def _w_cpu_weight(self, path: Path, d: Path, value: str) -> None:
        self._store(path, kv.cpu_weight, value)

    def _w_io_weight(self, path: Path, d: Path, value: str) -> None:
        self._store(path, kv.io_weight, value)

    def _w_io_bfq_weight(self, path: Path, d: Path, value: str) -> None:
        self._store(path, kv.bfq_weight, value)

    def _w_cpuset_cpus(self, path: Path, d: Path, value: str) -> None:
        self._store(path, lambda v: kv.cpuset_list(v, len(self.cpus), self.cpus), value)
        self._effective(d, "cpus")

    def _w_cpuset_mems(self, path: Path, d: Path, value: str) -> None:
        self._store(path, lambda v: kv.cpuset_list(v, 1024, self.mems), value)
        self._effective(d, "mems")

    def _effective(self, d: Path, what: str) -> None:
        """cpuset.<what>.effective: the setting within the parent's, or the parent's."""
        parent = kv.parse_list((d.parent / f"cpuset.{what}.effective").read_text(), 1 << 20)
        mine = (d / f"cpuset.{what}").read_text().strip()
        got = parent & kv.parse_list(mine, 1 << 20) if mine else parent
        (d / f"cpuset.{what}.effective").write_text(kv.format_list(got or parent))

    def _w_cgroup_freeze(self, path: Path, d: Path, value: str) -> None:
        self._store(path, lambda v: str(kv.flag(v, (0, 1))), value)

    def _w_cgroup_kill(self, path: Path, d: Path, value: str) -> None:
        try:
            kv.flag(value, (1,))
        except OSError as e:
            raise _fail(e.errno or errno.EINVAL, path) from None
        self._kill(d)

    def _kill(self, d: Path) -> None:
        for c in self._children(d):
            self._kill(c)
        for p in self._procs(d):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _w_cgroup_procs(self, path: Path, d: Path, value: str) -> None:
        try:
            pid = kv.pid(value) or os.getpid()
        except OSError:
            raise _fail(errno.EINVAL, path) from None
        if not alive(pid):
            raise _fail(errno.ESRCH, path)
        # cgroup_migrate_vet_dst: a domain below a thread root cannot host processes
        up = d.parent
        while not self._is_root(d) and up != self.root:
            if self._thread_root(up):
                raise _fail(errno.EOPNOTSUPP, path)
            up = up.parent
        # no internal processes; the root may hold anything
        if not self._is_root(d) and not self._can_be_thread_root(d):
            if self._words(d / "cgroup.subtree_control"):
                raise _fail(errno.EBUSY, path)
        for other in self.root.rglob("cgroup.procs"):  # one cgroup per process
            if other != path:
                kept = [p for p in other.read_text().split() if p != str(pid)]
                other.write_text("".join(f"{p}\n" for p in kept))
        pids = [str(p) for p in self._procs(d)]
        if str(pid) not in pids:
            pids.append(str(pid))
        path.write_text("".join(f"{p}\n" for p in pids))

    def _w_cgroup_subtree_control(self, path: Path, d: Path, value: str) -> None:
        enable: set[str] = set()
        disable: set[str] = set()
        for tok in value.split():
            if tok[0] not in "+-" or tok[1:] not in ORDER:
                raise _fail(errno.EINVAL, path)
            (enable if tok[0] == "+" else disable).add(tok[1:])
            (disable if tok[0] == "+" else enable).discard(tok[1:])
        offered = set(self._words(d / "cgroup.controllers"))
        current = set(self._words(path))
        enable -= current
        disable &= current
        if enable - offered:
            raise _fail(errno.ENOENT, path)
        for c in disable:
            if any(c in self._words(ch / "cgroup.subtree_control") for ch in self._children(d)):
                raise _fail(errno.EBUSY, path)
        if enable and not self._is_root(d):
            # cgroup_vet_subtree_control_enable: domain controllers never in a thread root
            # nor beside processes; threaded ones (cpu, cpuset, pids) beside processes only
            # while the cgroup can become a thread root
            if enable & DOMAIN and self._thread_root(d):
                raise _fail(errno.EOPNOTSUPP, path)
            if self._procs(d) and (enable & DOMAIN or not self._can_be_thread_root(d)):
                raise _fail(errno.EBUSY, path)
        now = (current | enable) - disable
        path.write_text(" ".join(c for c in ORDER if c in now))
        for child in self._children(d):  # the children's interface files follow
            (child / "cgroup.controllers").write_text(path.read_text())
            for c in enable:
                for name, text in self._controller_files(child, c).items():
                    (child / name).write_text(text)
            for c in disable:
                for name in CONTROLLER_FILES.get(c, {}):
                    (child / name).unlink(missing_ok=True)

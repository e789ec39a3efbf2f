"""runtime.network.netlinklib: composerd imports pyroute2's rtnetlink client without the rest
of pyroute2 (issue 15: ~6 MiB of its resident memory), and whoever wants all of pyroute2
still gets it whole."""
from __future__ import annotations

import subprocess
import sys

# the parts of pyroute2 composerd never uses, which its package __init__ imports
UNUSED = ("pyroute2.ndb", "pyroute2.ipdb", "pyroute2.nslink", "pyroute2.plan9", "pyroute2.ipset",
          "pyroute2.netlink.nl80211", "pyroute2.netlink.generic.wireguard", "sqlite3")


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_composerd_imports_only_the_rtnetlink_client() -> None:
    code = ("import sys, runtime.daemon.app, runtime.daemon.cli, runtime.engine; "
            f"print(sorted(m for m in {UNUSED!r} if m in sys.modules))")
    assert run(code) == "[]"


def test_the_whole_package_is_there_for_whoever_asks() -> None:
    code = ("import runtime.network.links as links, pyroute2, sys; "
            "from runtime.network.netlinklib import full_package_loaded; "
            "before = full_package_loaded(pyroute2); "
            "from pyroute2 import NetNS, IPRoute, NDB; "
            "print(before, full_package_loaded(pyroute2), links.AsyncIPRoute is pyroute2.AsyncIPRoute, "
            "'pyroute2.ndb' in sys.modules, bool(pyroute2.__version__))")
    assert run(code) == "False True True True True"


def test_nothing_changes_when_pyroute2_was_imported_first() -> None:
    code = ("import pyroute2; import runtime.network.netlinklib as n; "
            "print(n.full_package_loaded(pyroute2), n.AsyncIPRoute is pyroute2.AsyncIPRoute)")
    assert run(code) == "True True"

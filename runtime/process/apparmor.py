"""AppArmor on the host: is it on, the `composer-default` profile, loading it.

Where the kernel has AppArmor enabled (Debian's and Ubuntu's default), every container process
runs under `composer-default` -- the same rules as Docker's `docker-default` -- unless the
service says `security_opt: [apparmor=unconfined]` or names a profile the admin loaded
(`apparmor=NAME`). composerd writes the profile to `<state root>/apparmor/composer-default`
and loads it with `apparmor_parser -Kr` when it starts and again at a container start if
something unloaded it; the process is switched by `security.apply` at its execve.

The profile (rules as Docker's, our own text):
- network, capabilities and files are left to the other layers (capabilities, seccomp,
  masked paths, namespaces): `network`, `capability`, `file`, `umount` are allowed; AF_ALG
  sockets (the kernel's crypto API) are not, as in Docker's current profile; no `mount`;
- /proc: no write to a file directly in /proc or in any directory of it but /proc/<pid>/
  and /proc/sys/kernel/shm*; nothing at all with /proc/sysrq-trigger and /proc/kcore;
- /sys: writes only below /sys/fs/cgroup; nothing at all with /sys/firmware,
  /sys/devices/virtual/powercap and /sys/kernel/security;
- signals: received from the host's unconfined processes (and composerd's own profile if it
  runs under one), sent and received among the container's processes; ptrace only among them.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from runtime.errors import EngineError

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "composer-default"
UNCONFINED = "unconfined"
PROFILES_DIR = "/etc/apparmor.d"  # abstractions and tunables of the host's apparmor package
SECURITYFS = "/sys/kernel/security/apparmor"
ENABLED_PARAM = "/sys/module/apparmor/parameters/enabled"
PARSER_PATHS = ("/sbin/apparmor_parser", "/usr/sbin/apparmor_parser")
NOT_ENABLED = ("apparmor not enabled in this kernel: containers run without an AppArmor "
               "profile")


class AppArmorError(EngineError):
    """The default profile could not be loaded, or a named one is not there."""


def enabled(root: str = "/") -> bool:
    """The kernel has AppArmor on (both its securityfs and the module parameter say so)."""
    try:
        with open(os.path.join(root, ENABLED_PARAM.lstrip("/"))) as f:
            on = f.read(1) == "Y"
    except OSError:
        return False
    return on and os.path.isdir(os.path.join(root, SECURITYFS.lstrip("/")))


def parser() -> str | None:
    """apparmor_parser from the `apparmor` package, None when it is not installed."""
    found = shutil.which("apparmor_parser")
    return found or next((p for p in PARSER_PATHS if os.access(p, os.X_OK)), None)


def loaded_profiles(root: str = "/") -> dict[str, str]:
    """Loaded profile -> mode ("enforce", "complain", ...), from securityfs."""
    out: dict[str, str] = {}
    try:
        with open(os.path.join(root, SECURITYFS.lstrip("/"), "profiles")) as f:
            for line in f:
                # "<name> (<mode>)"; a name may contain spaces, the mode does not
                name, sep, mode = line.rstrip("\n").rpartition(" (")
                if sep:
                    out[name] = mode.rstrip(")")
    except OSError:
        pass
    return out


def is_loaded(name: str, root: str = "/") -> bool:
    return name in loaded_profiles(root)


def own_label() -> str:
    """The profile this process runs under ("unconfined" for composerd on a stock host)."""
    try:
        with open("/proc/self/attr/current") as f:
            label = f.read().strip()
    except OSError:
        return UNCONFINED
    return label.split(" (", 1)[0] or UNCONFINED


def profile_text(name: str = DEFAULT_PROFILE, daemon: str = UNCONFINED,
                 profiles_dir: str = PROFILES_DIR) -> str:
    """Our default profile; uses the host's abi/tunables/abstractions where it has them."""
    def has(rel: str) -> bool:
        return os.path.exists(os.path.join(profiles_dir, rel))

    head = ["# composer's default AppArmor profile, written and loaded by composerd",
            "# (runtime/process/apparmor.py); the same rules as Docker's docker-default."]
    if has("abi/3.0"):  # 3.0: a plain "network" rule still covers unix sockets
        head.append("abi <abi/3.0>,")
    head.append("#include <tunables/global>" if has("tunables/global") else "@{PROC}=/proc/")
    peers = [f"  signal (receive) peer={UNCONFINED},"]
    if daemon not in (UNCONFINED, name):
        peers.append(f'  signal (receive) peer="{daemon}",')
    body = [
        f'profile "{name}" flags=(attach_disconnected,mediate_deleted) {{',
        *(["  #include <abstractions/base>", ""] if has("abstractions/base") else []),
        "  # the other layers (capabilities, seccomp, namespaces, masked paths) decide these",
        "  network,",
        "  deny network alg,",
        "  capability,",
        "  file,",
        "  umount,",
        "  deny mount,",
        "",
        "  # composerd and the host's unconfined processes signal the container; its own",
        "  # processes signal and trace one another",
        *peers,
        f'  signal (send,receive) peer="{name}",',
        f'  ptrace (trace,tracedby,read,readby) peer="{name}",',
        "",
        "  # /proc: writable only below /proc/<pid>/ and /proc/sys/kernel/shm*",
        "  deny @{PROC}/* w,",
        "  deny @{PROC}/{[^1-9/],[^1-9/][^0-9/],[^1-9s/][^0-9y/][^0-9s/],"
        "[^1-9/][^0-9/][^0-9/][^0-9/]*}/** w,",
        "  deny @{PROC}/sys/[^k]** w,",
        "  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,",
        "  deny @{PROC}/sysrq-trigger rwklx,",
        "  deny @{PROC}/kcore rwklx,",
        "",
        "  # /sys: writable only below /sys/fs/cgroup; firmware, powercap, LSMs: not at all",
        "  deny /sys/[^f]*/** wklx,",
        "  deny /sys/f[^s]*/** wklx,",
        "  deny /sys/fs/[^c]*/** wklx,",
        "  deny /sys/fs/c[^g]*/** wklx,",
        "  deny /sys/fs/cg[^r]*/** wklx,",
        "  deny /sys/firmware/** rwklx,",
        "  deny /sys/devices/virtual/powercap/** rwklx,",
        "  deny /sys/kernel/security/** rwklx,",
        "}",
    ]
    return "\n".join(head + [""] + body) + "\n"


def load(text: str, path: Path) -> None:
    """Write the profile to `path` and (re)load it: apparmor_parser -K (no cache) -r (replace)."""
    exe = parser()
    if exe is None:
        raise AppArmorError("apparmor is enabled in this kernel but apparmor_parser is missing: "
                            "install the apparmor package, or set security_opt "
                            "apparmor=unconfined")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    res = subprocess.run([exe, "-Kr", str(path)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise AppArmorError(f"apparmor_parser could not load {path}: "
                            f"{detail[-1] if detail else f'exit status {res.returncode}'}")


def ensure_default(state_dir: Path, root: str = "/") -> None:
    """Load composer-default unless it is loaded with the text we would write now."""
    text = profile_text(daemon=own_label())
    path = state_dir / DEFAULT_PROFILE
    try:
        current = path.read_text()
    except OSError:
        current = ""
    if current == text and is_loaded(DEFAULT_PROFILE, root):
        return
    load(text, path)
    log.info("loaded the %s AppArmor profile from %s", DEFAULT_PROFILE, path)

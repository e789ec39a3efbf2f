"""What `stats` prints, as `docker stats` / `docker compose stats`: Docker's columns, its
JSON keys and go-units' words for sizes (`1.453MiB / 7.63GiB`, `1.2kB / 648B`)."""
from __future__ import annotations

from typing import Any

from runtime.api import ContainerInfo, Stats

DEFAULT_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
           "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def bytes_size(n: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits (`1.453MiB`)."""
    i = 0
    while n >= 1024 and i < len(_BINARY) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{_BINARY[i]}"  # Go's %.4g and Python's agree


def human_size(n: float) -> str:
    """go-units HumanSizeWithPrecision(n, 3): decimal units (`1.23kB`)."""
    i = 0
    while n >= 1000 and i < len(_DECIMAL) - 1:
        n /= 1000
        i += 1
    return f"{n:.3g}{_DECIMAL[i]}"


def host_memory() -> int:
    """MemTotal: the limit Docker shows for a container without one."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def row(c: ContainerInfo, now: tuple[float, Stats], before: tuple[float, Stats] | None,
        host_mem: int, *, trunc: bool = True) -> dict[str, Any]:
    """The fields of one line (Docker's stats context; JSON keys sorted as Go prints them)."""
    t, s = now
    cpu = 0.0
    if before is not None and t > before[0]:
        used = max(s.cpu_usage_ns - before[1].cpu_usage_ns, 0)
        cpu = 100.0 * used / 1e9 / (t - before[0])
    limit = s.memory_limit if 0 < s.memory_limit < host_mem or not host_mem else host_mem
    mem_perc = 100.0 * s.memory_usage / limit if limit else 0.0
    cid = c.id[:12] if trunc else c.id
    return {
        "BlockIO": f"{human_size(s.io_read_bytes)} / {human_size(s.io_write_bytes)}",
        "CPUPerc": f"{cpu:.2f}%",
        "Container": cid,
        "ID": cid,
        "MemPerc": f"{mem_perc:.2f}%",
        "MemUsage": f"{bytes_size(s.memory_usage)} / {bytes_size(limit)}",
        "Name": c.name,
        "NetIO": f"{human_size(s.net_rx_bytes)} / {human_size(s.net_tx_bytes)}",
        "PIDs": str(s.pids),
    }

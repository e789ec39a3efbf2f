"""Bridge networking for containers: networks, IPAM, veths, embedded DNS, NAT, published ports.

The engine uses `NetworkManager`; `resolv_conf`/`hosts_file` render per-container files.
See docs/networking.md.
"""
from runtime.network.errors import NetworkError
from runtime.network.files import hosts_file, resolv_conf
from runtime.network.manager import NetworkManager

__all__ = ["NetworkError", "NetworkManager", "hosts_file", "resolv_conf"]

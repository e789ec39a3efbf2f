"""The network package's error base.

Kernel-side failures (netlink, nft, sysctl) are `NetworkError`; request errors use the engine's
shared classes (`Conflict` for a taken port or IP, `NotFound` for an unknown network,
`InvalidArgument` for a bad subnet or address) so the daemon maps them to HTTP statuses.
"""
from __future__ import annotations

from runtime.errors import EngineError


class NetworkError(EngineError, OSError):
    """Something on the host refused: netlink, nft or a sysctl write failed."""

    status = 500

"""`devices` (host device nodes given to the container) and `device_cgroup_rules`.

Short syntax `HOST[:CONTAINER[:PERMISSIONS]]` as Compose parses it (three parts at most, the
second is always the container path, permissions default to rwm); long syntax
`{source, target, permissions}`. Two entries for one container path: the later wins (as
Compose does). Paths must be absolute; a CDI name (`vendor.com/class=name`) is refused.
`device_cgroup_rules` follow Docker's grammar `TYPE MAJOR:MINOR ACCESS` ("c 1:3 rwm").
Whether a host device exists is checked by the engine when it creates the container.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from composer.spec.where import Where, as_list, as_map, as_str, check_keys, str_list, unique_items
from runtime.devrules import DeviceRule, RuleError, normalize_access


@dataclass(frozen=True)
class DeviceSpec:
    source: str  # host path
    target: str  # container path
    permissions: str = "rwm"

    @classmethod
    def parse(cls, raw: Any, w: Where) -> DeviceSpec:
        if isinstance(raw, str):
            parts = raw.split(":")
            if len(parts) > 3:
                w.fail(f'confusing device mapping "{raw}": use HOST[:CONTAINER[:PERMISSIONS]] '
                       "or the long syntax (source, target, permissions)")
            source = parts[0]
            target = parts[1] if len(parts) > 1 and parts[1] else source
            perms = parts[2] if len(parts) > 2 else "rwm"
            wp = w
        else:
            item = as_map(raw, w)
            check_keys(item, w, ("source", "target", "permissions"))
            if "source" not in item:
                w.fail("missing key source")
            source = as_str(item["source"], w.key("source"))
            target = as_str(item["target"], w.key("target")) if item.get("target") else source
            perms = as_str(item["permissions"], w.key("permissions")) if "permissions" in item else "rwm"
            wp = w.key("permissions") if "permissions" in item else w
        if not source.startswith("/") and "=" in source:
            w.fail(f'not supported: CDI device "{source}" (give the host path of a device node, '
                   "e.g. /dev/ttyUSB0)")
        for what, path in (("host", source), ("container", target)):
            if not path.startswith("/"):
                w.fail(f'device {what} path "{path}" must be absolute (e.g. /dev/ttyUSB0)')
        try:
            perms = normalize_access(perms)
        except RuleError as e:
            wp.fail(str(e))
        return cls(source, target, perms)

    @classmethod
    def parse_all(cls, raw: Any, w: Where) -> tuple[DeviceSpec, ...]:
        by_target: dict[str, DeviceSpec] = {}
        for i, item in enumerate(as_list(raw, w)):
            d = cls.parse(item, w.idx(i))
            by_target.pop(d.target, None)
            by_target[d.target] = d
        return tuple(by_target.values())


def parse_cgroup_rules(raw: Any, w: Where) -> tuple[str, ...]:
    """Each rule checked against the grammar; kept as written (the engine parses it again)."""
    items = as_list(raw, w)
    unique_items(items, w)
    texts = str_list(items, w)
    for i, text in enumerate(texts):
        try:
            DeviceRule.parse(text)
        except RuleError as e:
            w.idx(i).fail(str(e))
    return texts

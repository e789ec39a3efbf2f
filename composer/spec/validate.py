"""Cross-references inside a stack: what services use must be declared at the top level."""
from __future__ import annotations

from collections.abc import Mapping

from composer.spec.resources import BUILD_IGNORED
from composer.spec.secopts import selinux_labels
from composer.spec.service import ServiceSpec
from composer.spec.toplevel import FileObject, NetworkConfig, VolumeConfig
from composer.spec.where import Where


def model_warnings(
    services: dict[str, ServiceSpec], networks: dict[str, NetworkConfig], file: str,
    files_of: Mapping[str, str] | None = None,
) -> list[str]:
    """Accepted keys that have no effect here: say so instead of ignoring them silently.
    `files_of` names the file of a service that `include:` brought in."""
    out: list[str] = []
    main_file = file
    for name, svc in services.items():
        file = (files_of or {}).get(name, main_file)
        for key in svc.deploy.ignored:
            out.append(f"{file}: services.{name}.deploy.{key}: swarm-only, ignored on a single host")
        for key in (svc.build.ignored if svc.build else ()):
            out.append(f"{file}: services.{name}.build.{key}: {BUILD_IGNORED[key]}, ignored")
        rp = svc.deploy.restart_policy
        for key in ("delay", "window"):
            if rp is not None and getattr(rp, key) is not None:
                out.append(f"{file}: services.{name}.deploy.restart_policy.{key}: swarm-only, ignored "
                           "(restarts follow the condition and max_attempts)")
        for key in ("cpus", "pids"):
            if getattr(svc.deploy.reservations, key) is not None:
                out.append(f"{file}: services.{name}.deploy.resources.reservations.{key}: only "
                           "reservations.memory is applied on a single host, ignored")
        for link in svc.links:
            target, _, alias = link.partition(":")
            if alias and alias != target:
                out.append(f"{file}: services.{name}.links: the alias {alias} of {target} is not "
                           f"resolved (give {target} a network alias instead)")
        for opt in selinux_labels(svc.security_opt):
            out.append(f"{file}: services.{name}.security_opt: {opt}: SELinux labels are not "
                       "applied (composer does not label containers), ignored")
        for dep in svc.depends_on:
            if not dep.required and dep.service not in services:
                # the spec's `required: false` "only warns" (compose-go rejects an undefined
                # one at load; we follow the spec, see docs/cli.md)
                out.append(f'{file}: services.{name}.depends_on.{dep.service}: service '
                           f'"{dep.service}" is not defined (required: false): {name} starts '
                           "without it")
        for attach in svc.networks:
            if attach.ipv6_address:
                out.append(f"{file}: services.{name}.networks.{attach.name}.ipv6_address: IPv6 is not supported, ignored")
    file = main_file
    for key, net in networks.items():
        if net.enable_ipv6:
            out.append(f"{file}: networks.{key}.enable_ipv6: IPv6 is not supported, ignored")
        for i, pool in enumerate(net.ipam):
            if pool.ipv6:
                out.append(f"{file}: networks.{key}.ipam.config[{i}]: IPv6 is not supported, "
                           f"pool {pool.subnet} ignored")
        if net.attachable:
            out.append(f"{file}: networks.{key}.attachable: ignored (swarm only)")
        extra = sorted(k for k in net.driver_opts if k != "com.docker.network.driver.mtu")
        if extra:
            out.append(f"{file}: networks.{key}.driver_opts: only com.docker.network.driver.mtu is used, ignored: {', '.join(extra)}")
    return out


def check_references(
    services: dict[str, ServiceSpec],
    networks: dict[str, NetworkConfig],
    volumes: dict[str, VolumeConfig],
    secrets: dict[str, FileObject],
    configs: dict[str, FileObject],
    file: str,
    files_of: Mapping[str, str] | None = None,
) -> None:
    """`files_of` names the file of a service that `include:` brought in (else `file`)."""
    for name, svc in services.items():
        w = Where((files_of or {}).get(name, file), f"services.{name}", service=name)
        if svc.image is None and svc.build is None:
            w.fail("has neither an image nor a build context (add image: or build:)")
        for net in svc.networks:
            if net.name not in networks and net.name != "default":
                w.key("networks").key(net.name).fail(
                    f'undefined network "{net.name}" (declare it under the top-level networks:)'
                )
        for i, mount in enumerate(svc.volumes):
            if mount.type == "volume" and mount.source and mount.source not in volumes:
                w.key("volumes").idx(i).fail(
                    f'undefined volume "{mount.source}" (declare it under the top-level volumes:)'
                )
        for kind, refs, declared in (("secret", svc.secrets, secrets), ("config", svc.configs, configs)):
            for i, ref in enumerate(refs):
                if ref.source not in declared:
                    w.key(f"{kind}s").idx(i).fail(
                        f'undefined {kind} "{ref.source}" (declare it under the top-level {kind}s:)'
                    )
        for i, ref in enumerate(svc.build.secrets if svc.build else ()):
            if ref.source not in secrets:
                w.key("build").key("secrets").idx(i).fail(
                    f'undefined secret "{ref.source}" (declare it under the top-level secrets:)')

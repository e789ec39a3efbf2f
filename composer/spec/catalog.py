"""Every key of the Compose Specification and what composer does with it.

One entry per key path of the Compose JSON schema (`services.*.build.target`; `*` is a name,
`[]` an item of a sequence). An entry covers the keys below it unless they have their own.
Status:
  supported  it works; `test` names the test that proves it
  ignored    accepted and kept (`composer config` prints it) but without effect on a single
             host: a warning says so; `example` is a stack file that shows the warning
  refused    a clear error naming the file, the service and the key; `example` is a stack
             file that is refused (at load, or when its container or build is made)

tests/unit/spec/test_key_catalog.py walks the schema and checks every key against this list
(and each example and test against the code); docs/stack-file.md carries the same list,
rendered by `render_markdown()` (`python3 -m composer.spec.catalog` prints it, `... --write
docs/stack-file.md` puts it there).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

SUPPORTED, IGNORED, REFUSED = "supported", "ignored", "refused"


@dataclass(frozen=True)
class Key:
    path: str
    status: str
    note: str = ""
    test: str = ""  # supported: "tests/...py::test_name"
    example: str = ""  # ignored / refused: a stack file (YAML)


T_SVC = "tests/unit/spec/test_service.py"
T_KEYS = "tests/unit/spec/test_service_keys.py"
T_BUILD = "tests/unit/spec/test_build_keys.py"
T_PM = "tests/unit/spec/test_ports_mounts.py"
T_LOAD = "tests/unit/spec/test_load.py"
T_CONV = "tests/unit/test_convert.py"
T_CAT = "tests/unit/spec/test_key_catalog.py"
T_DEV = "tests/unit/spec/test_devices.py"
T_HOOKS = "tests/unit/spec/test_hooks_develop.py"


def _svc(body: str, extra: str = "") -> str:
    """A stack file with one service `s` (image x) plus `body` in it, and top-level `extra`."""
    return f"services:\n  s:\n    image: x\n{body}\n{extra}"


def _ok(path: str, test: str, note: str = "") -> Key:
    return Key(path, SUPPORTED, note, test)


def _ign(path: str, note: str, example: str) -> Key:
    return Key(path, IGNORED, note, example=example)


def _no(path: str, note: str, example: str) -> Key:
    return Key(path, REFUSED, note, example=example)


KEYS: tuple[Key, ...] = (
    # -- top level --
    _ign("version", "obsolete", "version: '3.8'\nservices: {s: {image: x}}"),
    _ok("name", f"{T_LOAD}::test_project_name_precedence", "project name (-p and COMPOSE_PROJECT_NAME win)"),
    _ok("include", "tests/unit/spec/test_include.py::test_long_syntax_path_list_project_directory_env_file",
        "sub-projects: path, project_directory, env_file"),
    _ok("services", f"{T_SVC}::test_scalars_and_booleans"),
    _no("models", "models (Docker Model Runner)", "models: {m: {model: ai/x}}\nservices: {s: {image: x}}"),
    # -- networks --
    _ok("networks", f"{T_CONV}::test_network_and_volume_specs", "bridge networks"),
    _ok("networks.*.driver", f"{T_CONV}::test_network_and_volume_specs", "bridge (others are refused)"),
    _ok("networks.*.driver_opts", f"{T_SVC}::test_warnings_for_ignored_settings",
        "com.docker.network.driver.mtu; other options are warned about"),
    _ok("networks.*.enable_ipv4", f"{T_CAT}::test_small_keys_reach_the_runtime", "true (false is refused)"),
    _ign("networks.*.enable_ipv6", "IPv6 is not supported", _svc("", "networks: {n: {enable_ipv6: true}}")),
    _ign("networks.*.attachable", "swarm only", _svc("", "networks: {n: {attachable: true}}")),
    _ok("networks.*.ipam", f"{T_KEYS}::test_ipam_pools_ip_range_aux_addresses",
        "driver default; one IPv4 pool: subnet, gateway, ip_range, aux_addresses (IPv6 pools warned)"),
    _no("networks.*.ipam.options", "IPAM driver options",
        _svc("", "networks: {n: {ipam: {options: {a: b}}}}")),
    # -- volumes --
    _ok("volumes", f"{T_CONV}::test_network_and_volume_specs", "named volumes, local driver"),
    _ok("volumes.*.driver_opts", f"{T_KEYS}::test_volume_driver_opts_bind_form_and_subpath",
        "the bind form (type: none, o: bind, device: DIR); other options are refused"),
    # -- secrets / configs --
    _ok("secrets", f"{T_CONV}::test_secrets_and_configs_become_binds_or_files_the_engine_makes",
        "file, environment"),
    _no("secrets.*.external", "external secrets (swarm only)",
        "services: {s: {image: x, secrets: [e]}}\nsecrets: {e: {external: true}}"),
    _no("secrets.*.driver", "secret drivers", "services: {s: {image: x}}\nsecrets: {e: {driver: x}}"),
    _no("secrets.*.driver_opts", "secret driver_opts",
        "services: {s: {image: x}}\nsecrets: {e: {file: ./f, driver_opts: {a: b}}}"),
    _no("secrets.*.template_driver", "secret template_driver",
        "services: {s: {image: x}}\nsecrets: {e: {file: ./f, template_driver: golang}}"),
    _ok("configs", f"{T_CONV}::test_secrets_and_configs_become_binds_or_files_the_engine_makes",
        "file, environment, content"),
    _no("configs.*.external", "external configs (swarm only)",
        "services: {s: {image: x, configs: [e]}}\nconfigs: {e: {external: true}}"),
    _no("configs.*.template_driver", "config template_driver",
        "services: {s: {image: x}}\nconfigs: {e: {file: ./f, template_driver: golang}}"),
    # -- services: image, build --
    _ok("services.*.image", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.build", f"{T_BUILD}::test_every_build_key_reaches_the_build_request",
        "context, dockerfile, dockerfile_inline, args, target, labels, tags, network, shm_size, "
        "extra_hosts, no_cache, pull (a git or URL context is refused at build)"),
    _ok("services.*.build.no_cache_filter", f"{T_BUILD}::test_build_keys_without_effect_here_are_warned_about",
        "the whole build runs without the cache"),
    *(_ign(f"services.*.build.{k}", note, _svc(f"    build: {{context: ., {k}: {v}}}"))
      for k, v, note in (("cache_from", "[x]", "external caches are not used"),
                         ("cache_to", "[x]", "external caches are not written"),
                         ("platforms", "[linux/arm64]", "built for this host's platform"),
                         ("isolation", "default", "Windows"),
                         ("provenance", "true", "no attestations"), ("sbom", "true", "no attestations"))),
    _ok("services.*.build.secrets", f"{T_BUILD}::test_build_secrets_reach_the_build_request",
        "for RUN --mount=type=secret,id=TARGET (file, environment or content; uid/gid/mode "
        "are the Dockerfile's: refused here)"),
    _ok("services.*.build.ssh", f"{T_BUILD}::test_build_ssh_reaches_the_build_request",
        "for RUN --mount=type=ssh,id=ID: default = $SSH_AUTH_SOCK, ID=SOCKET, or ID=KEY[,KEY] "
        "served by an ssh-agent started for the build"),
    _ok("services.*.build.additional_contexts", f"{T_BUILD}::test_additional_contexts_name_services_images_and_folders",
        "service:NAME (built first), docker-image://REF, a directory; for FROM and COPY --from"),
    _ok("services.*.build.privileged", f"{T_BUILD}::test_privileged_and_entitlements_reach_the_build_request",
        "grants security.insecure: RUN --security=insecure runs as a privileged container"),
    _ok("services.*.build.entitlements", f"{T_BUILD}::test_privileged_and_entitlements_reach_the_build_request",
        "network.host (RUN --network=host), security.insecure (RUN --security=insecure)"),
    _no("services.*.build.ulimits", "build ulimits", _svc("    build: {context: ., ulimits: {nofile: 1}}")),
    # -- process --
    _ok("services.*.command", f"{T_SVC}::test_command_entrypoint"),
    _ok("services.*.entrypoint", f"{T_SVC}::test_command_entrypoint"),
    _ok("services.*.environment", f"{T_SVC}::test_environment_and_env_file"),
    _ok("services.*.env_file", f"{T_SVC}::test_environment_and_env_file", "path, required"),
    _ok("services.*.env_file[].format", f"{T_KEYS}::test_env_file_raw_format_and_label_file", "raw"),
    _ok("services.*.label_file", f"{T_KEYS}::test_env_file_raw_format_and_label_file"),
    _ok("services.*.labels", f"{T_KEYS}::test_env_file_raw_format_and_label_file"),
    _ign("services.*.annotations", "kept, not used", _svc("    annotations: {a: b}")),
    _ok("services.*.attach", "tests/unit/cli/test_streams_cli.py::test_which_services_an_attached_up_shows",
        "false: an attached up leaves its output out unless named with --attach"),
    _ok("services.*.working_dir", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.user", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.group_add", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.init", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.tty", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.stdin_open", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.read_only", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.privileged", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.stop_signal", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.stop_grace_period", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.restart", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.container_name", f"{T_CONV}::test_defaults_container_name_and_build_image",
        "not with more than one replica"),
    _ok("services.*.hostname", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.domainname", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.pull_policy", f"{T_SVC}::test_scalars_and_booleans"),
    _ok("services.*.profiles", f"{T_LOAD}::test_profiles"),
    _ok("services.*.extends", f"{T_LOAD}::test_extends_other_file_rebases_paths"),
    _ok("services.*.healthcheck", f"{T_SVC}::test_healthchecks"),
    _ok("services.*.depends_on", f"{T_SVC}::test_depends_on_and_networks"),
    _ok("services.*.links", f"{T_KEYS}::test_deploy_settings_without_effect_and_link_aliases_are_warned_about",
        "start order; an alias other than the service name is warned about"),
    _ign("services.*.external_links", "not resolved", _svc("    external_links: [other]")),
    _ign("services.*.platform", "images run on this host's platform", _svc("    platform: linux/arm64")),
    _ok("services.*.logging", f"{T_SVC}::test_kernel_and_host_settings",
        "json-file (rotated: 5 x 20 MB unless max-size/max-file say otherwise), local, none; "
        "max-size, max-file, compress; fluentd (fluentd-address, tag, fluentd-async, "
        "fluentd-sub-second-precision; a local cache keeps `logs` working: "
        "tests/unit/test_fluentd.py); other drivers are refused (their output would be lost)"),
    # -- resources --
    *(_ok(f"services.*.{k}", f"{T_SVC}::test_resources") for k in (
        "cpus", "cpu_shares", "cpu_quota", "cpu_period", "cpuset", "mem_limit", "memswap_limit",
        "mem_reservation", "pids_limit", "ulimits", "scale", "shm_size")),
    _ok("services.*.storage_opt", "tests/unit/spec/test_storage_opt.py::test_size_parses",
        "size only: a project quota on the writable layer; needs the state root on xfs (pquota) "
        "or ext4 (prjquota), refused elsewhere"),
    _ok("services.*.oom_kill_disable", f"{T_CAT}::test_small_keys_reach_the_runtime"),
    _ok("services.*.deploy", f"{T_SVC}::test_resources",
        "replicas, mode, resources.limits (cpus, memory, pids), reservations.memory, "
        "restart_policy (condition, max_attempts)"),
    *(_ign(f"services.*.deploy.{k}", "swarm only", _svc(f"    deploy: {{{k}: {v}}}"))
      for k, v in (("endpoint_mode", "vip"), ("labels", "{a: b}"), ("placement", "{constraints: []}"),
                   ("rollback_config", "{parallelism: 1}"), ("update_config", "{parallelism: 1}"))),
    *(_ign(f"services.*.deploy.restart_policy.{k}", "swarm only",
           _svc(f"    deploy: {{restart_policy: {{condition: any, {k}: 5s}}}}")) for k in ("delay", "window")),
    _ign("services.*.deploy.resources.reservations.cpus", "only reservations.memory applies",
         _svc("    deploy: {resources: {reservations: {cpus: '1'}}}")),
    _no("services.*.deploy.resources.reservations.devices", "device requests (use devices:)",
        _svc("    deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}")),
    _no("services.*.deploy.resources.reservations.generic_resources", "generic_resources",
        _svc("    deploy: {resources: {reservations: {generic_resources: []}}}")),
    *(_no(f"services.*.{k}", note, _svc(f"    {k}: {v}")) for k, v, note in (
        ("blkio_config", "{weight: 10}", "blkio_config"), ("cpu_count", "1", "cpu_count (use cpus)"),
        ("cpu_percent", "50", "cpu_percent (use cpus)"), ("cpu_rt_period", "1000", "cpu_rt_period"),
        ("cpu_rt_runtime", "1000", "cpu_rt_runtime"), ("mem_swappiness", "10", "mem_swappiness"),
        ("oom_score_adj", "100", "oom_score_adj"), ("cgroup_parent", "x", "cgroup_parent"),
        ("runtime", "runc", "runtime"),
        ("isolation", "default", "isolation (Windows)"), ("credential_spec", "{file: x}", "credential_spec (Windows)"),
        ("gpus", "all", "gpus (give the device nodes with devices:)"),
        ("use_api_socket", "true", "use_api_socket"), ("pull_refresh_after", "1h", "pull_refresh_after"),
        ("provider", "{type: model}", "provider services"), ("models", "[m]", "models"))),
    # -- lifecycle hooks, watch --
    _ok("services.*.pre_start", f"{T_HOOKS}::test_hook_syntaxes",
        "command, user, privileged, working_dir, environment, image; run in a container of their own"),
    *(_ok(f"services.*.{k}", f"{T_HOOKS}::test_hook_syntaxes",
          "command, user, privileged, working_dir, environment; exec'd in the container")
      for k in ("post_start", "pre_stop")),
    _ok("services.*.develop", f"{T_HOOKS}::test_develop_watch_syntaxes",
        "watch: path, action (sync, rebuild, restart, sync+restart, sync+exec), target, ignore, "
        "include, exec, initial_sync"),
    # -- kernel, security, namespaces --
    _ok("services.*.sysctls", f"{T_SVC}::test_kernel_and_host_settings"),
    _ok("services.*.cap_add", f"{T_SVC}::test_kernel_and_host_settings"),
    _ok("services.*.cap_drop", f"{T_SVC}::test_kernel_and_host_settings"),
    _ok("services.*.security_opt", f"{T_KEYS}::test_security_opt_spellings_docker_accepts",
        "no-new-privileges, seccomp, apparmor, label (SELinux labels warned about); others refused"),
    _ok("services.*.devices", f"{T_DEV}::test_short_and_long_syntax"),
    _ok("services.*.device_cgroup_rules", f"{T_DEV}::test_device_cgroup_rules_are_checked_and_kept"),
    _ok("services.*.userns_mode", f"{T_CAT}::test_small_keys_reach_the_runtime", "host, private"),
    *(_ok(f"services.*.{k}", f"{T_KEYS}::test_namespace_modes_reach_the_container_spec_and_the_graph", note)
      for k, note in (("ipc", "private, shareable, host, service:NAME, container:NAME"),
                      ("pid", "host, service:NAME, container:NAME"), ("uts", "host"),
                      ("cgroup", "host, private"))),
    # -- networking --
    _ok("services.*.network_mode", f"{T_CONV}::test_service_network_mode_and_deploy_resources",
        "host, none, bridge, service:NAME, container:NAME"),
    _ok("services.*.networks", f"{T_SVC}::test_depends_on_and_networks", "aliases, ipv4_address, priority"),
    *(_ok(f"services.*.networks.*.{k}", f"{T_KEYS}::test_mac_interface_link_local_gw_priority")
      for k in ("mac_address", "interface_name", "link_local_ips", "gw_priority")),
    _ign("services.*.networks.*.ipv6_address", "IPv6 is not supported",
         _svc("    networks: {n: {ipv6_address: '::5'}}", "networks: {n: {}}")),
    _no("services.*.networks.*.driver_opts", "driver_opts on a service network",
        _svc("    networks: {n: {driver_opts: {a: b}}}", "networks: {n: {}}")),
    _ok("services.*.mac_address", f"{T_KEYS}::test_mac_interface_link_local_gw_priority",
        "of the main network"),
    _ok("services.*.ports", f"{T_PM}::test_long_port_keeps_mode_and_name"),
    _ok("services.*.expose", f"{T_PM}::test_expose"),
    _ok("services.*.dns", f"{T_SVC}::test_kernel_and_host_settings"),
    _ok("services.*.dns_opt", f"{T_SVC}::test_kernel_and_host_settings"),
    _ok("services.*.dns_search", f"{T_SVC}::test_kernel_and_host_settings"),
    _ok("services.*.extra_hosts", f"{T_SVC}::test_kernel_and_host_settings"),
    # -- storage --
    _ok("services.*.volumes", f"{T_PM}::test_long_volume_forms", "bind, volume, tmpfs, image"),
    _ok("services.*.volumes[].volume.subpath", f"{T_KEYS}::test_volume_driver_opts_bind_form_and_subpath"),
    _ok("services.*.volumes[].volume.nocopy", f"{T_KEYS}::test_volume_driver_opts_bind_form_and_subpath"),
    _no("services.*.volumes[].volume.labels", "labels on a volume mount (set them on the top-level volume)",
        _svc("    volumes: [{type: volume, source: v, target: /v, volume: {labels: {a: b}}}]", "volumes: {v: {}}")),
    _ok("services.*.volumes[].image", f"{T_KEYS}::test_image_mounts_reach_the_container_spec"),
    _ok("services.*.volumes[].consistency", f"{T_CAT}::test_small_keys_reach_the_runtime",
        "kept; no effect on Linux (as Docker)"),
    _ok("services.*.volumes[].bind.recursive", f"{T_CAT}::test_small_keys_reach_the_runtime",
        "enabled (other values refused)"),
    _ok("services.*.volumes_from", f"{T_SVC}::test_ports_volumes_tmpfs"),
    _ok("services.*.tmpfs", f"{T_PM}::test_tmpfs_entries"),
    _ok("services.*.secrets", f"{T_CONV}::test_secrets_and_configs_become_binds_or_files_the_engine_makes",
        "source, target, uid, gid, mode"),
    _ok("services.*.configs", f"{T_CONV}::test_secrets_and_configs_become_binds_or_files_the_engine_makes",
        "source, target, uid, gid, mode"),
)

BY_PATH = {k.path: k for k in KEYS}


def entry_for(path: str) -> Key | None:
    """The entry that decides `path`: its own, else its nearest listed parent's."""
    while path:
        if path in BY_PATH:
            return BY_PATH[path]
        path = path[:-2] if path.endswith("[]") else path.rpartition(".")[0]
    return None


def render_markdown() -> str:
    """The key tables of docs/stack-file.md (between its `keys:begin` / `keys:end` marks)."""
    out = []
    for status, title in ((SUPPORTED, "Supported"), (IGNORED, "Accepted with a warning (no effect here)"),
                          (REFUSED, "Refused (a clear error naming the key)")):
        out.append(f"#### {title}\n")
        out.append("| key | notes |" if status != SUPPORTED else "| key | notes | proof |")
        out.append("|---|---|" if status != SUPPORTED else "|---|---|---|")
        for k in sorted((k for k in KEYS if k.status == status), key=lambda k: k.path):
            note = k.note.replace("|", "\\|")
            if status == SUPPORTED:
                out.append(f"| `{k.path}` | {note} | `{k.test.split('::')[-1]}` |")
            else:
                out.append(f"| `{k.path}` | {note} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


BEGIN, END = "<!-- keys:begin (python3 -m composer.spec.catalog) -->\n", "<!-- keys:end -->"


def write_into(path: str) -> None:
    """Replace what is between the marks of `path` (docs/stack-file.md) with the tables."""
    with open(path) as f:
        text = f.read()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(path, "w") as f:
        f.write(head + BEGIN + render_markdown() + END + tail)


if __name__ == "__main__":  # `--write docs/stack-file.md` updates the docs in place
    if sys.argv[1:2] == ["--write"]:
        write_into(sys.argv[2])
    else:
        sys.stdout.write(render_markdown())

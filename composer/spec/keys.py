"""Which keys exist, which we support, which we refuse, which are harmless and only warned about."""
from __future__ import annotations

TOP_LEVEL_KEYS = ("version", "name", "include", "services", "networks", "volumes", "secrets", "configs")
TOP_LEVEL_UNSUPPORTED = {
    "models": "models",
}

# Keys of the Compose spec we do not implement: refusing them is better than ignoring them.
SERVICE_UNSUPPORTED = {
    "blkio_config": "blkio_config", "cgroup_parent": "cgroup_parent",
    "cpu_count": "cpu_count (use cpus)", "cpu_percent": "cpu_percent (use cpus)",
    "cpu_rt_period": "cpu_rt_period", "cpu_rt_runtime": "cpu_rt_runtime",
    "credential_spec": "credential_spec (Windows only)",
    "gpus": "gpus (GPU requests need a vendor's container toolkit; pass the GPU's device "
            "nodes with devices: instead)",
    "isolation": "isolation (Windows only)",
    "mem_swappiness": "mem_swappiness", "models": "models",
    "oom_score_adj": "oom_score_adj", "provider": "provider services",
    "pull_refresh_after": "pull_refresh_after", "runtime": "runtime (composer is the runtime)",
    "use_api_socket": "use_api_socket",
}

# Accepted and kept, but without effect on this single-host runtime: a warning names them.
SERVICE_WARN = {
    "platform": "platform is ignored (images run on this host's platform)",
    "annotations": "annotations are kept but not used",
    "external_links": "external_links are kept but not resolved",
}

SERVICE_KEYS = (
    "annotations", "attach", "build", "cap_add", "cap_drop", "cgroup", "command", "configs",
    "container_name", "cpu_period", "cpu_quota", "cpu_shares", "cpus", "cpuset", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "group_add",
    "healthcheck", "hostname", "image", "init", "ipc", "label_file", "labels", "links", "logging",
    "mac_address",
    "mem_limit", "mem_reservation", "memswap_limit", "network_mode", "networks",
    "oom_kill_disable", "pid", "pids_limit", "platform", "ports", "post_start", "pre_start",
    "pre_stop", "privileged", "profiles",
    "pull_policy", "read_only", "restart", "scale", "secrets", "security_opt", "shm_size",
    "stdin_open", "storage_opt", "stop_grace_period", "stop_signal", "sysctls", "tmpfs", "tty", "ulimits",
    "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
)

NETWORK_KEYS = (
    "name", "driver", "driver_opts", "external", "internal", "ipam", "labels", "attachable",
    "enable_ipv4", "enable_ipv6",
)
VOLUME_KEYS = ("name", "driver", "driver_opts", "external", "labels")
SECRET_KEYS = ("name", "file", "environment", "external", "labels", "driver", "driver_opts", "template_driver")
CONFIG_KEYS = ("name", "file", "environment", "content", "external", "labels", "template_driver")

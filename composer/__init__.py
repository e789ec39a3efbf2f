"""composer: the orchestrator. Knows stack files, services and dependencies; never the kernel."""

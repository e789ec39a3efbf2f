"""`python -m runtime.daemon`: composerd (how the CLI starts it, see runtime.client)."""
import contextlib
import sys

from runtime.daemon.cli import main

with contextlib.suppress(KeyboardInterrupt):
    sys.exit(main())

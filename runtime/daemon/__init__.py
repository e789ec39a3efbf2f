"""`composerd`: serves the Engine API as JSON over HTTP on a root-only unix socket.

    create_app(engine)            the aiohttp application, handlers from runtime.routes; no I/O
    serve(engine, socket_path)    bind the socket (0600, dir 0700) and start serving -> runner
    run(paths, engine_factory)    the daemon's life: lock, stale socket, pid file, signals, close
    main()                        console script; `--background` forks *before* any event loop
                                  and returns once the daemon answers (or failed to start)

One module per concern:

    app.py        create_app: the route table's handlers, errors -> JSON (middleware)
    handlers.py   one handler per route of runtime.routes: parse, call the engine, answer
    streams.py    JSON-lines and tar streams, the attach websocket relay
    serving.py    the socket: bind it private, serve the app, tell a stale socket
    lifecycle.py  run(): run-dir lock, pid file, signals, orphaned calls, engine close
    cli.py        main(): flags, logging, --foreground / --background

Stopping the daemon (SIGTERM/SIGINT) stops serving and closes the engine; containers keep
running under the monitor and a restarted daemon re-adopts them.
"""
from runtime.daemon.app import create_app
from runtime.daemon.cli import main
from runtime.daemon.handlers import VERSION
from runtime.daemon.lifecycle import EngineFactory, load_engine_factory, run
from runtime.daemon.serving import DaemonError, bind_socket, serve

__all__ = [
    "VERSION",
    "DaemonError",
    "EngineFactory",
    "bind_socket",
    "create_app",
    "load_engine_factory",
    "main",
    "run",
    "serve",
]

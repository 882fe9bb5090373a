"""Start moto in server mode with this project's ECR additions.

    python moto_launcher.py [--host 127.0.0.1] [--port 0] [--log-file PATH]
                            [--stdin-watch auto|on|off] [--verbose]

Port 0 picks a free port.  Once the server answers, exactly one line is
printed to stdout:

    READY http://127.0.0.1:PORT

after which stdout is pointed at stderr, so a parent that stops reading
stdout cannot block the server.  The server stops on SIGTERM or SIGINT, and
(with the default ``--stdin-watch auto``, when stdin is a pipe or socket) when
stdin reaches end of file: a test process that spawns the launcher with a
piped stdin and dies takes the server with it.

The server is moto's own Flask application, with the additions of
``moto_ecr_ext`` (paging, pull through cache rules, ...) and its
``EcrExtMiddleware`` (fault switch and call counters under
``/moto-api/ecr-ext/``), served by werkzeug with one thread per connection.
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moto_ecr_ext  # noqa: E402  (patches moto's ECR classes on import)
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import ThreadedWSGIServer  # noqa: E402


class Server(ThreadedWSGIServer):
    # Clients (the operator's SDK) open a new connection per request, since
    # werkzeug closes each; socketserver's default backlog of 5 would drop
    # bursts of concurrent connects.
    request_queue_size = 256
    daemon_threads = True


class QuietRequestHandler(MotoRequestHandler):
    """Moto's request handler without the access log (errors still logged)."""

    def log_request(self, code: object = "-", size: object = "-") -> None:
        pass


def _watch_stdin(enabled: str) -> bool:
    if enabled != "auto":
        return enabled == "on"
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _wait_for_stdin_eof(stop: threading.Event) -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    stop.set()


def _wait_until_answering(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/ecr-ext/faults", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--log-file", help="write stderr (errors, tracebacks) here")
    parser.add_argument("--stdin-watch", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    if args.log_file:
        log = open(args.log_file, "ab", buffering=0)
        os.dup2(log.fileno(), 2)

    app = moto_ecr_ext.EcrExtMiddleware(DomainDispatcherApplication(create_backend_app))
    handler = MotoRequestHandler if args.verbose else QuietRequestHandler
    server = Server(args.host, args.port, app, handler=handler)
    host, port = server.server_address[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    _wait_until_answering(url)

    sys.stdout.write(f"READY {url}\n")
    sys.stdout.flush()
    # From here on anything printed (moto prints a few warnings) goes to stderr.
    os.dup2(2, 1)

    if _watch_stdin(args.stdin_watch):
        threading.Thread(target=_wait_for_stdin_eof, args=(stop,), daemon=True).start()
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

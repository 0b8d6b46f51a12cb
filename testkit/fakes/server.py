"""Run an ASGI app on a real port in a background thread, for tests where timing matters
(streaming) or a browser must connect."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_asgi(
    app: Any, host: str = "127.0.0.1", *, startup_timeout: float = 10.0, **options: Any
) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port; yield its base URL, e.g. "http://127.0.0.1:54321".
    `options` go to uvicorn.Config (e.g. ssl_certfile and ssl_keyfile: then the URL is https)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))  # bound before the thread starts, so no other test can take the port
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host=host, port=port, loop="asyncio", lifespan="on", log_level="warning",
        ws="none",  # websockets' deprecation warnings would be errors under our pytest config
        timeout_graceful_shutdown=1,  # a `silent` request must not hold up the exit
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {host}:{port} (see its log)")
            time.sleep(0.01)
        scheme = "https" if options.get("ssl_certfile") else "http"
        yield f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

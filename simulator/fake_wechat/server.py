"""The fake served: :func:`create_fake_app` puts WeChat's API paths, the ``/_fake/`` controls and
the 48001 fallback into one Starlette app; :func:`serve` runs it in the foreground
(``safetybot fake-wechat``) and :class:`BackgroundServer` runs any ASGI app on a thread (tests,
demo, benchmarks).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette

from simulator.fake_wechat.account import FakeWeChat
from simulator.fake_wechat.api import api_routes, unknown_api_route
from simulator.fake_wechat.control import control_routes


def create_fake_app(fake: FakeWeChat) -> Starlette:
    """The Starlette app serving ``fake``: WeChat's API paths, then the ``/_fake/`` controls."""
    return Starlette(routes=[*api_routes(fake), *control_routes(fake), unknown_api_route(fake)])


def serve(fake: FakeWeChat, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve ``fake`` in the foreground until interrupted (``safetybot fake-wechat``)."""
    uvicorn.run(create_fake_app(fake), host=host, port=port, log_level="info", lifespan="off")


class BackgroundServer:
    """Serves an ASGI app with uvicorn on a daemon thread: ``with BackgroundServer(app, port) as url:``.
    ``lifespan="on"`` runs the app's start-up and shut-down too (a bot's worker role lives there)."""

    def __init__(self, app: Any, port: int, host: str = "127.0.0.1", lifespan: str = "off"):
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan=lifespan, ws="none",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn:{port}", daemon=True)
        self.base_url = f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server at {self.base_url} did not start")
            time.sleep(0.005)
        return self.base_url

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

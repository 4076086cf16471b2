"""Requests to kube-apiserver on the hot paths, over the kubernetes client's own connection pool,
TLS settings and credentials, without its generated API methods.

Those methods validate every argument and rebuild their settings on each call (model checks,
proxy lookups from the environment, the token hook): a fraction of a millisecond of CPU per
request, which the controller and the extension pay thousands of times in a busy minute, on the
same cores as kube-apiserver. Here a request is a method, a path, a query and a body. The
credentials are read again every minute, so rotated service account tokens are picked up, as the
client itself does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client

from extension.api import jsoncodec

log = logging.getLogger(__name__)

CREDENTIALS_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 30.0


class KubeHTTP:
    """Thread-safe (urllib3's pool is). Raises only urllib3's and the OS's transport errors:
    callers turn the status of a response into their own errors."""

    def __init__(self, api: client.ApiClient, user_agent: str = "") -> None:
        self.configuration = api.configuration
        self.base = str(api.configuration.host).rstrip("/")
        self.pool = api.rest_client.pool_manager
        self.user_agent = user_agent or str(api.user_agent)
        self._headers: dict[str, str] = {}
        self._until = 0.0
        self._lock = threading.Lock()

    def _credentials(self) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            if now >= self._until:
                headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
                for setting in self.configuration.auth_settings().values():
                    if setting.get("in") == "header" and setting.get("value"):
                        headers[str(setting["key"])] = str(setting["value"])
                self._headers, self._until = headers, now + CREDENTIALS_SECONDS
            return self._headers

    def send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = 30.0,
        stream: bool = False,
        accept: str = "",
        headers: dict[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """The response, read unless ``stream`` (then the caller ends it with :func:`close`).
        Query values of None are left out; booleans are sent as kube spells them. ``accept``
        replaces the default ``application/json``; ``headers`` are added (impersonation)."""
        url = self.base + path
        params = [(k, _text(v)) for k, v in (query or {}).items() if v is not None]
        if params:
            url += "?" + urlencode(params)
        sent = {**self._credentials(), **(headers or {})}  # a copy: urllib3 may add to it
        if accept:
            sent["Accept"] = accept
        data = None
        if body is not None:
            sent["Content-Type"] = content_type
            data = body if isinstance(body, bytes) else jsoncodec.dumps(body)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        return self.pool.request(
            method, url, body=data, headers=sent, preload_content=not stream,
            timeout=urllib3.Timeout(connect=connect, read=read),
        )  # fmt: skip


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def status_of(data: bytes) -> dict[str, Any]:
    """The metav1.Status in an error response, or {} when the body is not one."""
    try:
        status = jsoncodec.loads(data or b"{}")
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def events(response: urllib3.BaseHTTPResponse) -> Iterator[dict[str, Any]]:
    """The decoded events of a watch response, one per line, as they arrive. The caller handles
    transport errors and ends the response with :func:`close`."""
    buffer = bytearray()
    for chunk in response.stream(1024, decode_content=True):
        start = len(buffer)
        buffer += chunk
        end = buffer.find(b"\n", start)
        while end != -1:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if line.strip():
                yield jsoncodec.loads(line)
            end = buffer.find(b"\n")


def close(response: urllib3.BaseHTTPResponse) -> None:
    """End a streamed response: its connection is closed, not handed back to the pool while the
    server may still be sending on it (the next request would read the old stream's bytes)."""
    response.close()
    response.release_conn()


class Gone(Exception):
    """A watch's resourceVersion is too old (410 Gone): list again."""


def list_and_watch_forever(
    list_and_watch: Callable[[], None],
    stop: threading.Event,
    failed: Callable[[Exception, float], None],
    sleep: Callable[[float], object],
) -> None:
    """Run ``list_and_watch`` until ``stop`` is set: again at once when it returns or raises
    :class:`Gone`; after any other failure, which ``failed`` hears of with the back-off, after that
    back-off (doubling from 0.5 s up to 30 s)."""
    backoff = 0.5
    while not stop.is_set():
        try:
            list_and_watch()
            backoff = 0.5
        except Gone as exc:
            log.info("%s; listing again", exc)
            backoff = 0.5
        except Exception as exc:
            failed(exc, backoff)
            sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

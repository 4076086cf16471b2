"""A small threaded HTTPS server for platform tests: HTTP/1.1 keep-alive, records each request.

The tests use it to prove what kube-apiserver sends to servers on the host (webhooks, the
aggregation layer); driftguard's own servers run under gunicorn and are tested elsewhere.
"""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from certs.pki import KeyPair


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    peer_cn: str | None
    body: bytes


# A handler answers (status, JSON body) for a request.
Handler = Callable[[Seen], tuple[int, Any]]


@dataclass
class TLSServer:
    port: int
    seen: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def serve_tls(serving: KeyPair, handler: Handler, client_ca_pem: bytes | None = None) -> TLSServer:
    """Start a server on 127.0.0.1 on a free port; client certs are optional and, when sent,
    must chain to ``client_ca_pem``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert.write_bytes(serving.cert_pem)
        key.write_bytes(serving.key_pem)
        context.load_cert_chain(cert, key)
    if client_ca_pem:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=client_ca_pem.decode())

    state = TLSServer(port=0)

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: no TLS handshake per request

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            cn = None
            for rdn in (peer or {}).get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
            headers: dict[str, str] = {}
            for key, value in self.headers.items():  # repeated headers (X-Remote-Group) are joined
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            seen = Seen(self.command, self.path, headers, cn, body)
            state.seen.append(seen)
            status, payload = handler(seen)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
    server.daemon_threads = True
    # Handshake in the handler thread, so one slow client never blocks accept().
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    state.port = server.server_address[1]
    state._server = server
    threading.Thread(target=server.serve_forever, name=f"tls-{state.port}", daemon=True).start()
    return state

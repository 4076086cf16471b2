"""Reading and writing PEM files: ``<dir>/<name>.crt`` and ``<dir>/<name>.key`` (mode 0600).

Writes are atomic (temp file + rename), so a crash never leaves a half-written key behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from certs.pki import CertError, KeyPair, load_cert


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_pair(directory: Path, name: str, pair: KeyPair) -> None:
    write_atomic(directory / f"{name}.key", pair.key_pem, 0o600)
    write_atomic(directory / f"{name}.crt", pair.cert_pem)


def read_pair(directory: Path, name: str) -> KeyPair:
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    try:
        pair = KeyPair(crt.read_bytes(), key.read_bytes())
    except FileNotFoundError as exc:
        raise CertError(f"{exc.filename} does not exist") from exc
    try:
        load_cert(pair.cert_pem)
        pair.private_key()
    except (CertError, ValueError) as exc:
        raise CertError(f"{crt} / {key}: {exc}") from exc
    return pair


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    write_atomic(path, yaml.safe_dump(config, sort_keys=False).encode(), 0o600)

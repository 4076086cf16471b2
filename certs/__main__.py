"""``python -m certs``: make CAs, certificates and kubeconfigs from the command line.

  python -m certs control-plane --dir .local/pki --server https://127.0.0.1:6443
  python -m certs ca --out DIR/NAME --cn NAME
  python -m certs serving --ca DIR/CA --out DIR/NAME --cn NAME --dns a.b --ip 127.0.0.1
  python -m certs client --ca DIR/CA --out DIR/NAME --cn USER --org GROUP
  python -m certs kubeconfig --ca DIR/CA --client DIR/NAME --server URL --out FILE

Paths name a pair by stem: DIR/NAME means DIR/NAME.crt and DIR/NAME.key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from certs import controlplane, files, pki
from certs.kubeconfig import kubeconfig


def _stem(value: str) -> tuple[Path, str]:
    path = Path(value)
    return path.parent, path.name


def _read(value: str) -> pki.KeyPair:
    return files.read_pair(*_stem(value))


def _write(value: str, pair: pki.KeyPair) -> None:
    directory, name = _stem(value)
    files.write_pair(directory, name, pair)
    print(f"wrote {directory / name}.crt and {directory / name}.key")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("control-plane", help="make the local control plane's PKI (idempotent)")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--server", required=True, help="kube-apiserver URL written into the kubeconfigs")

    p = sub.add_parser("ca", help="make a self-signed CA")
    p.add_argument("--out", required=True)
    p.add_argument("--cn", required=True)
    p.add_argument("--days", type=int, default=pki.DEFAULT_CA_DAYS)

    p = sub.add_parser("serving", help="make a TLS serving certificate")
    p.add_argument("--ca", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cn", required=True)
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--ip", action="append", default=[])
    p.add_argument("--days", type=int, default=pki.DEFAULT_LEAF_DAYS)

    p = sub.add_parser("client", help="make a TLS client certificate (CN = user, O = groups)")
    p.add_argument("--ca", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cn", required=True)
    p.add_argument("--org", action="append", default=[])
    p.add_argument("--days", type=int, default=pki.DEFAULT_LEAF_DAYS)

    p = sub.add_parser("kubeconfig", help="write a kubeconfig for a client certificate")
    p.add_argument("--ca", required=True)
    p.add_argument("--client", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--user", default="admin")

    args = parser.parse_args(argv)
    try:
        if args.command == "control-plane":
            report = controlplane.ensure(args.dir, args.server)
            made = ", ".join(report.created) or "nothing"
            print(f"control-plane PKI in {args.dir}: created {made}; kept {len(report.kept)}")
        elif args.command == "ca":
            _write(args.out, pki.new_ca(args.cn, args.days))
        elif args.command == "serving":
            _write(args.out, pki.new_serving_cert(_read(args.ca), args.cn, args.dns, args.ip, args.days))
        elif args.command == "client":
            _write(args.out, pki.new_client_cert(_read(args.ca), args.cn, args.org, args.days))
        elif args.command == "kubeconfig":
            ca = _read(args.ca)
            config = kubeconfig(args.server, ca.cert_pem, _read(args.client), user=args.user)
            files.write_kubeconfig(args.out, config)
            print(f"wrote {args.out}")
    except (pki.CertError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Certificates for tests, made with the openssl command: a CA, and server certificates signed by it (or by
another CA), with the names a test asks for. Nothing here is fit for production (keys unencrypted, 2 days).

    pki = Pki(tmp_path)
    ca = pki.ca("checkpoint-ca")
    right = pki.server("right", ca, "IP:127.0.0.1,DNS:localhost")
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cert:
    crt: Path
    key: Path


class Pki:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)

    def _openssl(self, *args: str) -> None:
        if shutil.which("openssl") is None:  # make setup installs it: a TLS test never skips for want of it
            raise RuntimeError("the openssl command is missing: run `make setup` (or apt-get install -y openssl)")
        subprocess.run(["openssl", *args], cwd=self.dir, check=True, capture_output=True)

    def ca(self, name: str) -> Cert:
        """A self-signed CA certificate (CN=name)."""
        crt, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                      "-keyout", str(key), "-out", str(crt))  # fmt: skip
        return Cert(crt, key)

    def server(self, name: str, ca: Cert, san: str) -> Cert:
        """A server certificate signed by `ca` for the subjectAltName `san` (e.g. "IP:127.0.0.1")."""
        crt, key, csr, ext = (self.dir / f"{name}.{x}" for x in ("crt", "key", "csr", "ext"))
        ext.write_text(f"subjectAltName={san}\n")
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key),
                      "-out", str(csr))  # fmt: skip
        self._openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.crt), "-CAkey", str(ca.key), "-CAcreateserial",
                      "-days", "2", "-extfile", str(ext), "-out", str(crt))  # fmt: skip
        return Cert(crt, key)

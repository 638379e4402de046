"""TEST STAND-IN for kube-apiserver (a lab utility until the control-plane issue brings the real apiserver).

An HTTPS server on a lab host's :6443 answering GET /healthz with "ok <hostname>", over TLS with a self-signed
certificate made here with `cryptography`. Only the load balancer's lab tests and `keelson bench vip` use it, as
haproxy's backends; it is never on the product's path (no role installs it) and goes away when the real apiserver
runs on the lab.
"""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provision.lab import Lab

SERVER = r"""#!/usr/bin/python3
# keelson TEST STAND-IN for kube-apiserver: HTTPS /healthz only
import http.server, socket, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        health = self.path.startswith(("/healthz", "/readyz", "/livez"))
        body = (("ok " + socket.gethostname()) if health else "no").encode()
        self.send_response(200 if body != b"no" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 6443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/etc/keelson-test/apiserver.crt", "/etc/keelson-test/apiserver.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""


def self_signed(name: str, address: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))]), False
        )
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def start(lab: Lab, host: str) -> None:
    """Run the stand-in as a transient unit `fake-apiserver` on `host` (restarted if it was running)."""
    address = lab.host(host).address
    cert, key = self_signed(host, address)
    lab.run(
        host,
        "mkdir -p /etc/keelson-test && cat > /usr/local/bin/fake-apiserver <<'EOF'\n" + SERVER + "EOF\n"
        "chmod +x /usr/local/bin/fake-apiserver",
    )
    lab.run(
        host,
        f"cat > /etc/keelson-test/apiserver.crt <<'EOF'\n{cert.decode()}EOF\n"
        f"cat > /etc/keelson-test/apiserver.key <<'EOF'\n{key.decode()}EOF\n",
    )
    lab.run(
        host,
        "systemctl stop fake-apiserver 2>/dev/null; systemctl reset-failed fake-apiserver 2>/dev/null; "
        "systemd-run --unit=fake-apiserver --collect /usr/local/bin/fake-apiserver >/dev/null",
    )


def stop(lab: Lab, host: str) -> None:
    lab.run(host, "systemctl stop fake-apiserver", check=False)

"""Cloud-init user data for the cloud and virtualisation sources: the stack's SSH key for root and the host key the
stack generated for the machine. Pure (rendered with Jinja2 through roles/templating.py's environment)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from roles.templating import render


@dataclass(frozen=True)
class CloudInit:
    cluster: str
    host: str
    authorized_key: str  # "ssh-ed25519 AAAA… comment"
    host_key_private: str  # OpenSSH private key text
    host_key_public: str

    def user_data(self) -> str:
        return render(
            __file__,
            "cloud-init.yaml.j2",
            cluster=self.cluster,
            host=self.host,
            authorized_key=self.authorized_key.strip(),
            host_key_private=self.host_key_private.strip(),
            host_key_public=self.host_key_public.strip(),
        )


def public_key_of(private_key: str) -> str:
    """The OpenSSH public line of an OpenSSH (or PEM) private key: what root's authorized_keys gets."""
    key = serialization.load_ssh_private_key(private_key.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def known_hosts_line(address: str, public_key: str) -> str:
    kind, data = public_key.split()[:2]
    return f"{address} {kind} {data}\n"

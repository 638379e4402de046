"""SSH logins, direct or through jump hosts, with keelson's host-key policy on every hop.

A login through a jump host is OpenSSH's ProxyJump done with paramiko: a `direct-tcpip` channel opened on the jump
host's transport to the next hop's address and port, and the next hop's SSH handshake run over that channel (the
channel is its socket). Every hop's client gets the inventory's known_hosts and keelson's strict policy
(RejectPolicy, or recording on first use only when asked) before it connects. A direct login uses keelson's own
socket, TCP_NODELAY set before the handshake; every login offers AES-GCM first (`_gcm_first`).

Fabric's `Connection(gateway=…)` does the same hop, but Fabric imports invoke, which the CLI keeps out of the process
(~60–80 ms of CPU per command, keelson/cli.py); the hop itself is the one paramiko call below.

`Gateways` holds a run's jump-host connections: one per chain of hops, opened once (under a lock, so two hosts
never race to open it) and shared by every host behind it; a jump host that failed is not tried again in the run,
each host behind it fails at once with the jump host's error.
"""

from __future__ import annotations

import binascii
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from roles.engine.errors import AuthFailed, EngineError, HostKeyMismatch, HostKeyUnknown, HostUnreachable
from roles.engine.ssh_route import Endpoint

if TYPE_CHECKING:
    import paramiko
    from paramiko import MissingHostKeyPolicy, PKey

CONNECT_ATTEMPTS = 4
CONNECT_TIMEOUT_S = 10
CHANNEL_TIMEOUT_S = 15  # a jump host that cannot open the channel to the next hop in this time fails it
KEEPALIVE_S = 15
# paramiko's reader thread reads its socket with a timeout (`Transport._active_check_timeout`, 0.1 s) only to look,
# when it times out, whether the connection was closed here and whether a keepalive is due: an idle connection woke
# 10 times a second (0.7 ms of keelson's CPU per host per second, measured with 20 open). Data wakes it at once
# whatever the timeout; close() does not wait for it (the thread is a daemon and ends at its next wake).
READER_WAKE_S = 1.0
T = TypeVar("T")
PolicyFor = Callable[[], "MissingHostKeyPolicy"]


def fingerprint(key: PKey) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def login(
    endpoint: Endpoint,
    known: Path,
    policy: MissingHostKeyPolicy,
    via: paramiko.Transport | None,
    files: LoginFiles | None = None,
) -> paramiko.SSHClient:
    """One SSH login to `endpoint`: through `via` (the jump host's open transport) or directly; strict host keys.
    `files`: the run's known_hosts and private keys, read once (else this login reads them itself)."""
    import paramiko

    files = files or LoginFiles()
    client = paramiko.SSHClient()
    files.give_host_keys(client, known, endpoint)
    loaded = files.private_keys(endpoint.keys) if endpoint.keys else None
    client.set_missing_host_key_policy(policy)
    sock: socket.socket | paramiko.Channel
    if via is None:
        # Our own socket, so TCP_NODELAY is set before the handshake: with Nagle's algorithm every small SSH packet
        # that follows an unacknowledged one waits for the peer's delayed ACK (~40 ms per exec, measured).
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        sock = via.open_channel(
            "direct-tcpip", (endpoint.host, endpoint.port), ("", 0), timeout=CHANNEL_TIMEOUT_S
        )  # the jump host's sshd connects to the next hop; ("", 0): no originator to tell it
    try:
        client.connect(
            endpoint.host,
            port=endpoint.port,
            sock=sock,
            username=endpoint.user,
            # the keys as loaded once for the run, in order (the first as pkey: paramiko tries it first), else
            # their file names for paramiko to read
            pkey=loaded[0] if loaded else None,
            key_filename=(list(endpoint.keys[1:]) if loaded else list(endpoint.keys)) or None,  # type: ignore[arg-type]
            look_for_keys=not endpoint.keys,
            allow_agent=not endpoint.keys,
            timeout=CONNECT_TIMEOUT_S,
            banner_timeout=15,
            auth_timeout=15,
            transport_factory=_gcm_first,
        )
    except BaseException:
        client.close()
        sock.close()
        raise
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(KEEPALIVE_S)
    return client


class KnownHostsUnreadable(Exception):
    """The inventory's known_hosts cannot be read, or has a line paramiko cannot parse; the message names the file
    and the line (`login_error` makes it the host's error)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class LoginFiles:
    """The files every login of a run reads — known_hosts and the private keys — each read once and shared by the
    run's logins (thread-safe).

    paramiko reads them again for each login: `load_host_keys` parses the whole known_hosts and checks each line
    against the lines before it (1.3 ms of CPU per login with 20 lines, measured: O(hosts²) per login, O(hosts³) per
    run), and `key_filename` parses a key file once for each key type it tries (RSA, ECDSA, then Ed25519). Here a
    known_hosts file is parsed once, again only when it changes on disk (a key recorded on first use), and each
    login's client is given the entries for its own host, in the file's order: what paramiko looks up for it
    (`SSHClient.connect`: `host`, or `[host]:port` off port 22; hashed names included). A key file is read the way
    paramiko reads it (the first of those types that loads, its `-cert.pub` beside it); one that does not load
    (missing, behind a passphrase) is not kept, and the login passes its name to paramiko as before, which says why.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[Path, tuple[tuple[int, int, int], paramiko.HostKeys]] = {}
        self._keys: dict[str, PKey | None] = {}

    def give_host_keys(self, client: paramiko.SSHClient, known: Path, endpoint: Endpoint) -> None:
        """Add to `client` the host keys `known` holds for `endpoint` (nothing when the file does not exist)."""
        if not known.exists():
            return
        keys = self._parsed(known)
        name = endpoint.host if endpoint.port == 22 else f"[{endpoint.host}]:{endpoint.port}"
        found = keys.lookup(name)
        if found is None:
            return
        mine = client.get_host_keys()
        for key_type in dict.fromkeys(found.keys()):  # the first key of each type, as paramiko's lookup answers
            mine.add(name, key_type, found[key_type])

    def _parsed(self, known: Path) -> paramiko.HostKeys:
        with self._lock:
            try:
                st = known.stat()
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None  # load_known_hosts says why
            cached = self._known.get(known)
            if stamp is not None and cached is not None and cached[0] == stamp:
                return cached[1]
            keys = load_known_hosts(known)
            if stamp is not None:
                self._known[known] = (stamp, keys)
            return keys

    def private_keys(self, paths: tuple[str, ...]) -> list[PKey] | None:
        """The keys in `paths`, loaded once per run; None when one of them does not load (paramiko then reads the
        files itself, and its error is the login's)."""
        with self._lock:
            for path in paths:
                if path not in self._keys:
                    self._keys[path] = _load_key(path)
            keys = [self._keys[p] for p in paths]
        return None if any(k is None for k in keys) else [k for k in keys if k is not None]


def _load_key(path: str) -> PKey | None:
    """A private key file as paramiko reads one (`PKey.from_path`: its type from the file, with its certificate when
    `<key>-cert.pub` exists). None: it does not load without a passphrase (paramiko reads it at the login, and says
    why)."""
    import paramiko

    try:
        return paramiko.PKey.from_path(path)
    except Exception:  # not loadable so: missing, behind a passphrase, an unknown type, a broken certificate
        return None


def load_known_hosts(known: Path) -> paramiko.HostKeys:
    """Parse the inventory's known_hosts. A file that cannot be read, or a line paramiko cannot parse
    (`InvalidHostKey` for a key that is not base64; ValueError and others from a key whose numbers are wrong), is
    KnownHostsUnreadable naming the file and the line, never a traceback."""
    import paramiko

    fix = f"fix or delete that line of {known} (ssh.known_hosts in the inventory), then verify the host's key"
    keys = paramiko.HostKeys()
    try:
        keys.load(str(known))
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise KnownHostsUnreadable(
            f"{known}:{line}: known_hosts is not UTF-8 text (byte {exc.object[exc.start]:#04x})", fix
        ) from exc
    except OSError as exc:
        raise KnownHostsUnreadable(
            f"cannot read known_hosts {known}: {exc.strerror or exc}",
            "ssh.known_hosts in the inventory must name a readable file",
        ) from exc
    except Exception as exc:  # paramiko raises whatever the key's parser raised for a malformed line
        number, text, why = _bad_line(known) or (0, "", f"{type(exc).__name__}: {exc}")
        where = f"{known}:{number}: malformed known_hosts line {text!r}" if number else f"{known}: malformed file"
        raise KnownHostsUnreadable(f"{where}: {why}", fix) from exc
    return keys


def _bad_line(path: Path) -> tuple[int, str, str] | None:
    """(line number, line, why) of the first known_hosts line paramiko cannot parse; it reports no line number."""
    from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            HostKeyEntry.from_line(line, number)
        except InvalidHostKey as exc:
            not_base64 = isinstance(exc.exc, binascii.Error)
            return (
                number,
                line[:60],
                "its key is not valid base64" if not_base64 else f"its key cannot be read: {exc.exc}",
            )
        except Exception as exc:  # any parser error makes this the bad line
            return number, line[:60], f"its key cannot be read ({type(exc).__name__}: {exc})"
    return None


def _gcm_first(sock: Any, **options: Any) -> paramiko.Transport:
    """paramiko's Transport, preferring AES-GCM: an AEAD cipher seals each packet in one native call, where AES-CTR
    adds an HMAC that paramiko computes per packet in Python (about 30% less of keelson's CPU per byte, measured on
    lab hosts). CTR stays as the fallback for servers without GCM. Key exchange and host keys keep paramiko's order:
    the ML-KEM/X25519 hybrid first, then curve25519 (both native code), and the host key type first offered is the
    one known_hosts holds (SSHClient does that), so the first offer is accepted and nothing is renegotiated.
    Its reader thread wakes every READER_WAKE_S when idle, not paramiko's 0.1 s."""
    import paramiko

    transport = paramiko.Transport(sock, **options)
    sock.settimeout(READER_WAKE_S)
    security = transport.get_security_options()
    offered = tuple(security.ciphers)
    gcm = tuple(c for c in offered if c.endswith("-gcm@openssh.com"))
    security.ciphers = gcm + tuple(c for c in offered if c not in gcm)
    return transport


def with_retries(action: Callable[[], T]) -> T:
    """Retry connection errors (tenacity, exponential backoff); a refused host key or login never is."""
    import paramiko
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    retrying = Retrying(
        retry=retry_if_exception_type(
            (socket.timeout, ConnectionError, paramiko.ssh_exception.NoValidConnectionsError, EOFError)
        ),
        stop=stop_after_attempt(CONNECT_ATTEMPTS),
        wait=wait_exponential(multiplier=0.2, max=2),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            return action()
    raise AssertionError("unreachable")  # pragma: no cover


def login_error(exc: BaseException, host: str, endpoint: Endpoint, known: Path, via: str = "") -> EngineError | None:
    """The engine error a failed login becomes (None: not a login failure, a bug to raise as it is).
    `via`: `through bastion …` when the login went through jump hosts."""
    import paramiko

    where = f"{endpoint.host}:{endpoint.port}" + (f" {via}" if via else "")
    if isinstance(exc, KnownHostsUnreadable):
        return EngineError(host, str(exc), hint=exc.hint)
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(
            host,
            f"host key CHANGED for {where}: expected {fingerprint(exc.expected_key)}, "
            f"got {fingerprint(exc.key)} ({exc.key.get_name()}) — refusing to connect",
            hint=f"if the host was really reinstalled, remove its line from {known} and verify the new key",
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return AuthFailed(
            host,
            f"SSH authentication as {endpoint.user} to {where} failed: {exc}",
            hint="check ssh.user and ssh.key in the inventory (and User/IdentityFile in the ssh config)",
        )
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return HostKeyUnknown(
            host,
            f"no known host key for {where} in {known}: refusing to trust it blindly",
            hint="add the host's key to known_hosts (ssh-keyscan + verify), or rerun with --trust-on-first-use",
        )
    if isinstance(exc, OSError | EOFError | paramiko.SSHException):
        return HostUnreachable(host, f"cannot connect to {where}: {exc}", hint="is the host up and sshd running?")
    return None


class Gateways:
    """A run's jump-host connections, shared by every host behind them (see the module docstring)."""

    def __init__(self, known: Path, policy: PolicyFor, files: LoginFiles | None = None) -> None:
        self.known = known
        self.policy = policy
        self.files = files or LoginFiles()
        self._open: dict[tuple[Endpoint, ...], paramiko.SSHClient] = {}
        self._failed: dict[tuple[Endpoint, ...], EngineError] = {}
        self._lock = threading.Lock()

    def get(self, chain: tuple[Endpoint, ...], host: str) -> paramiko.Transport:
        """The open transport of the last hop of `chain` (opening the hops before it first). A failure is raised
        as `host`'s error, naming the jump host."""
        with self._lock:
            try:
                return self._get(chain)
            except EngineError as exc:
                raise type(exc)(host, f"bastion {exc.message}", hint=exc.hint) from exc

    def _get(self, chain: tuple[Endpoint, ...]) -> paramiko.Transport:
        if chain in self._failed:
            raise self._failed[chain]
        current = self._open.get(chain)
        transport = current.get_transport() if current is not None else None
        if transport is not None and transport.is_active():
            return transport
        parent = self._get(chain[:-1]) if len(chain) > 1 else None
        hop = chain[-1]
        try:
            conn = with_retries(lambda: login(hop, self.known, self.policy(), parent, self.files))
        except Exception as exc:
            error = login_error(exc, str(hop), hop, self.known)
            if error is None:
                raise
            self._failed[chain] = error
            raise error from exc
        self._open[chain] = conn
        transport = conn.get_transport()
        if transport is None:  # pragma: no cover - a connected client has one
            raise HostUnreachable(str(hop), "connection closed right after login")
        return transport

    def close(self) -> None:
        with self._lock:
            for chain in sorted(self._open, key=len, reverse=True):  # the inner hops before the ones they go through
                self._open.pop(chain).close()

"""Command-line strings to an engine configuration: proposals, identities, selectors, credentials.

Everything here reads user input (files, strings) and raises :class:`UsageError` with one line
naming the option at fault; the CLI turns that into exit status 2.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ipsecdiag.engine.config import (
    CertAuth,
    ChildConfig,
    Identity,
    IkeConfig,
    PskAuth,
    RetransmitPolicy,
    selector_for,
)
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.wire.ikev2_sa import Proposal
from ipsecdiag.wire.ikev2_ts import TrafficSelector

DEFAULT_IKE = "aes256gcm16-prfsha256-ecp256-modp2048,aes256-sha256-ecp256-modp2048"
DEFAULT_ESP = "aes256gcm16,aes256-sha256"


class UsageError(ValueError):
    """Bad option or unreadable credential file: one line, exit status 2."""


@dataclass(frozen=True)
class Credentials:
    """``--psk-file`` or ``--cert``/``--key`` (+ ``--ca``), already read and checked."""

    auth: PskAuth | CertAuth
    ca_certs: tuple[bytes, ...] = ()
    subject_dn: str | None = None  # of our certificate: the default identity with certificates


def proposals(text: str, protocol: str, option: str) -> tuple[Proposal, ...]:
    from ipsecdiag.protocol.proposal_strings import ProposalSyntaxError, parse_proposals

    try:
        props = parse_proposals(text, protocol=protocol)
    except ProposalSyntaxError as e:
        raise UsageError(f"{option} {text!r}: {e}") from None
    if not props:
        raise UsageError(f"{option}: no proposal in {text!r}")
    return props


_PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132}
_SELECTOR = re.compile(r"^(?P<net>[^\[\]]+?)(?:\[(?P<proto>[^/\]]*)(?:/(?P<port>[^\]]*))?\])?$")


def _proto_port(proto: str, port: str, option: str, part: str) -> tuple[int, tuple[int, int]]:
    """strongSwan's ``[proto/port]`` (swanctl.conf local_ts/remote_ts): names or numbers,
    ``%any`` or empty for any, ports as ``N`` or ``N-M``."""
    bad = UsageError(f"{option}: {part!r}: expected ADDRESS[/PREFIX][PROTOCOL/PORT], e.g. 10.0.0.0/24[tcp/443]")
    number = 0
    if proto not in ("", "%any"):
        number = _PROTOCOLS.get(proto.lower(), -1) if not proto.isdigit() else int(proto)
        if not 0 <= number <= 255:
            raise bad
    if port in ("", "%any"):
        return number, (0, 0xFFFF)
    lo, _, hi = port.partition("-")
    if not (lo.isdigit() and (hi or lo).isdigit()) or not 0 <= int(lo) <= int(hi or lo) <= 0xFFFF:
        raise bad
    return number, (int(lo), int(hi or lo))


def selectors(text: str | None, option: str, family: int) -> tuple[TrafficSelector, ...]:
    """``10.0.0.0/24,10.1.0.0/16[tcp/443]`` (commas, strongSwan's bracket syntax); empty ->
    the whole address family."""
    if not text:
        return (selector_for("0.0.0.0/0" if family == 4 else "::/0"),)
    out = []
    for part in text.split(","):
        part = part.strip()
        m = _SELECTOR.match(part)
        if m is None:
            raise UsageError(f"{option}: {part!r} is not an address or network")
        protocol, ports = _proto_port(m["proto"] or "", m["port"] or "", option, part)
        try:
            out.append(selector_for(m["net"], protocol=protocol, ports=ports))
        except ValueError:
            raise UsageError(f"{option}: {m['net']!r} is not an address or network") from None
    return tuple(out)


def identity(text: str, option: str) -> Identity:
    try:
        return Identity.parse(text)
    except ValueError as e:
        raise UsageError(f"{option} {text!r}: {e}") from None


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UsageError(f"{option} {path}: {e.strerror or e}") from None


def read_psk(path: Path) -> SecretBytes:
    """The PSK file's content without its trailing newline (a ``0x`` line is hex)."""
    raw = _read(path, "--psk-file").rstrip(b"\r\n")
    if not raw:
        raise UsageError(f"--psk-file {path}: empty")
    if raw.startswith(b"0x"):
        try:
            return SecretBytes(bytes.fromhex(raw[2:].decode()))
        except (ValueError, UnicodeDecodeError):
            raise UsageError(f"--psk-file {path}: 0x... but not hex") from None
    return SecretBytes(raw)


def _certs(path: Path, option: str) -> list[bytes]:
    from cryptography.hazmat.primitives.serialization import Encoding

    from ipsecdiag.crypto.x509 import CertificateDecodeError, load_certificates

    try:
        certs = load_certificates(_read(path, option))
    except CertificateDecodeError as e:
        raise UsageError(f"{option} {path}: not a certificate ({e})") from None
    if not certs:
        raise UsageError(f"{option} {path}: no certificate found")
    return [c.public_bytes(Encoding.DER) for c in certs]


def load_credentials(
    psk_file: Path | None, cert: Path | None, key: Path | None, ca: Sequence[Path] = ()
) -> Credentials:
    """Exactly one of a PSK file or a certificate with its key; CA files are trust anchors."""
    ca_der = tuple(d for p in ca for d in _certs(p, "--ca"))
    if psk_file is not None:
        if cert is not None or key is not None:
            raise UsageError("use either --psk-file or --cert/--key, not both")
        return Credentials(PskAuth(read_psk(psk_file)), ca_der)
    if cert is None or key is None:
        raise UsageError("credentials needed: --psk-file FILE, or --cert FILE with --key FILE")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from ipsecdiag.crypto.x509 import dn_text

    chain = _certs(cert, "--cert")
    data = _read(key, "--key")
    try:
        if b"-----BEGIN" in data:
            private = serialization.load_pem_private_key(data, password=None)
        else:
            private = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--key {key}: not an unencrypted private key ({e})") from None
    leaf = x509.load_der_x509_certificate(chain[0])
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if leaf.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise UsageError(f"--key {key} does not belong to the certificate in --cert {cert}")
    return Credentials(CertAuth(private, tuple(chain)), ca_der, dn_text(leaf.subject))


def retransmit_for(timeout: float) -> RetransmitPolicy:
    """An RFC 7296 §2.1 schedule (x1.8 back-off) that spends ``timeout`` before giving up.

    As many retransmissions as fit with a first wait of at least 0.5 s (at most 5), the first
    wait then stretched (up to 4 s) so that the engine gives up just before the probe's own
    deadline: a short ``--timeout`` still retransmits, a long one does not flood.
    """
    base = 1.8
    tries = 0
    while tries < 5 and 0.5 * sum(base**k for k in range(tries + 2)) <= timeout:
        tries += 1
    total = sum(base**k for k in range(tries + 1))
    # never slower than strongSwan's default first wait (4 s): a long --timeout just ends earlier
    return RetransmitPolicy(timeout=min(4.0, 0.95 * timeout / total), base=base, tries=tries)


def build_config(
    *,
    ike: str,
    esp: str,
    creds: Credentials,
    local_id: str | None,
    remote_id: str | None,
    ts: str | None,
    local_ts: str | None,
    local_addr: str,
    encap: bool,
    timeout: float,
    virtual_ip: bool = False,
    mode: str = "tunnel",
    fragment_size: int = 1280,
) -> IkeConfig:
    """The initiator's :class:`IkeConfig` from ``probe connect``'s options."""
    family = ipaddress.ip_address(local_addr).version
    child = ChildConfig(
        proposals=proposals(esp, "esp", "--esp"),
        local_ts=() if virtual_ip and not local_ts else selectors(local_ts, "--local-ts", family),
        remote_ts=selectors(ts, "--ts", family),
        mode=mode,
    )
    lid = local_id or creds.subject_dn or local_addr
    return IkeConfig(
        ike_proposals=proposals(ike, "ike", "--ike"),
        child=child,
        local_id=identity(lid, "--id"),
        remote_id=identity(remote_id, "--remote-id") if remote_id else None,
        auth=creds.auth,
        ca_certs=creds.ca_certs,
        request_virtual_ip=virtual_ip,
        force_encap=encap,
        fragment_size=fragment_size,
        retransmit=retransmit_for(timeout),
    )


def build_responder_config(
    *,
    ike: str,
    esp: str,
    creds: Credentials,
    local_id: str | None,
    remote_id: str | None,
    local_ts: str | None,
    remote_ts: str | None,
    listen: str,
    pool: str | None = None,
    encap: bool = False,
    mode: str = "tunnel",
) -> IkeConfig:
    """The responder's :class:`IkeConfig`: what it accepts and the selectors it narrows to."""
    family = ipaddress.ip_address(listen).version
    if pool is not None:
        try:
            ipaddress.ip_network(pool, strict=False)
        except ValueError:
            raise UsageError(f"--pool {pool!r} is not a network") from None
    child = ChildConfig(
        proposals=proposals(esp, "esp", "--esp"),
        local_ts=selectors(local_ts, "--ts", family),
        remote_ts=selectors(remote_ts, "--remote-ts", family),
        mode=mode,
    )
    return IkeConfig(
        ike_proposals=proposals(ike, "ike", "--ike"),
        child=child,
        local_id=identity(local_id or creds.subject_dn or listen, "--id"),
        remote_id=identity(remote_id, "--remote-id") if remote_id else None,
        auth=creds.auth,
        ca_certs=creds.ca_certs,
        pool=pool,
        force_encap=encap,
    )


__all__ = [
    "build_responder_config",
    "DEFAULT_ESP",
    "DEFAULT_IKE",
    "Credentials",
    "UsageError",
    "build_config",
    "identity",
    "load_credentials",
    "proposals",
    "read_psk",
    "retransmit_for",
    "selectors",
]

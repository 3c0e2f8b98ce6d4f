"""NAT detection hashes (IKEv2: RFC 7296 §2.23; IKEv1: RFC 3947 §3.2).

IKEv2 NAT_DETECTION_SOURCE_IP / _DESTINATION_IP notify data is
SHA-1(SPIi | SPIr | IP | port) over the SPIs of the message's own header (SPIr is zero in
the IKE_SA_INIT request). IKEv1 NAT-D payloads carry HASH(CKY-I | CKY-R | IP | port) with the
negotiated phase 1 hash. Addresses are packed in network order (4 or 16 bytes), the port is
two bytes big-endian. A sender that wants UDP encapsulation regardless of NAT sends a source
hash that matches no address (strongSwan ``encap = yes``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

# IKEv1 phase 1 hash names (registry V1HashAlg names) -> hash constructor.
V1_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "SHA": hashlib.sha1,
    "SHA2_256": hashlib.sha256,
    "SHA2_384": hashlib.sha384,
    "SHA2_512": hashlib.sha512,
}
# When the phase 1 proposal is not known, the digest length names the hash.
_BY_DIGEST_LEN = {16: "MD5", 20: "SHA", 32: "SHA2_256", 48: "SHA2_384", 64: "SHA2_512"}


def _endpoint(ip: str | bytes, port: int) -> bytes:
    packed = ip if isinstance(ip, bytes) else ipaddress.ip_address(ip).packed
    return packed + port.to_bytes(2, "big")


def natd_hash_v2(spi_i: bytes, spi_r: bytes, ip: str | bytes, port: int) -> bytes:
    """IKEv2 NAT-D notification data for one address and port (RFC 7296 §2.23)."""
    return hashlib.sha1(spi_i + spi_r + _endpoint(ip, port)).digest()


def v1_hash_name(negotiated: str | None, digest: bytes) -> str | None:
    """The IKEv1 hash a NAT-D was computed with: the negotiated one, else by digest length;
    None when it cannot be recomputed (TIGER, unknown)."""
    name = negotiated or _BY_DIGEST_LEN.get(len(digest))
    return name if name in V1_HASHES else None


def natd_hash_v1(hash_name: str, cookie_i: bytes, cookie_r: bytes, ip: str | bytes, port: int) -> bytes:
    """IKEv1 NAT-D payload data with the phase 1 hash ``hash_name`` (RFC 3947 §3.2)."""
    return V1_HASHES[hash_name](cookie_i + cookie_r + _endpoint(ip, port)).digest()


@dataclass(frozen=True)
class NatdSide:
    """What the NAT-D hashes say about one side S of an IKE SA, read at a point P.

    ``behind``: S is behind a NAT, with P "inside" it (a hash of S's address in a message to S
    did not match) or "outside" it (S's source hash did not match and its port was translated);
    ``forced``: S's source hash did not match although nothing translated it; ``ambiguous``: S's
    source hash did not match and nothing tells a NAT in front of S from S forcing UDP
    encapsulation, which RFC 7296 §2.23 ("... or it may send a NAT_DETECTION_SOURCE_IP that does
    not match ...") and strongSwan ``encap = yes`` / kernel-libipsec do.
    """

    behind: str | None = None
    forced: bool = False
    ambiguous: bool = False

    @property
    def verdict(self) -> str:
        """"nat", "forced", "nat-or-forced" or "none": one word for a report or JSON field."""
        if self.behind:
            return "nat"
        return "forced" if self.forced else "nat-or-forced" if self.ambiguous else "none"

    @property
    def nat(self) -> bool | None:
        """True: a NAT in front of S; False: none; None: a NAT, or S forces encapsulation."""
        return True if self.behind else None if self.ambiguous else False


def judge_side(destination_mismatch: bool, source_mismatch: bool, port_translated: bool) -> NatdSide:
    """One side S: ``destination_mismatch``, a hash of S's address in a message to S did not
    match S's address as P saw it; ``source_mismatch``, S's own source hash did not match;
    ``port_translated``, S's IKE traffic came from a port other than the IKE/NAT-T ports."""
    if destination_mismatch:
        # seen from inside its NAT the source hash should match: a mismatch is forcing
        return NatdSide(behind="inside", forced=source_mismatch)
    if source_mismatch and port_translated:
        return NatdSide(behind="outside")
    return NatdSide(ambiguous=source_mismatch)

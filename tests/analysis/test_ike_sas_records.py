"""Message records of the IKE reconstructor keep the datagram's transport facts."""

from __future__ import annotations

import struct

from ipsecdiag.capture.model import IkeDatagram
from ipsecdiag.reconstruction.ike_sas import IkeReconstructor


def _bad_sa_init() -> bytes:
    # RFC 7296 §3.1 header (IKE_SA_INIT request from the initiator, length 32), then an SA
    # payload header whose Payload Length (2) is below the 4-byte generic header: malformed.
    header = b"\x11" * 8 + bytes(8) + struct.pack("!BBBBII", 33, 0x20, 34, 0x08, 0, 32)
    return header + struct.pack("!BBH", 0, 0, 2)


def test_malformed_message_record_keeps_marker_and_transport() -> None:
    rec = IkeReconstructor()
    d = IkeDatagram(
        frame=1,
        frames=(1,),
        ts=0.0,
        src="192.0.2.1",
        dst="192.0.2.2",
        sport=4500,
        dport=4500,
        data=_bad_sa_init(),
        transport="tcp",
        non_esp_marker=True,
    )
    rec.on_ike(d)
    # A lone first request waits, unparsed, in the half-open ledger until the end of the pass
    # (issue 14): it is parsed, and found malformed, when the pass finishes.
    rec.finish()
    assert rec.malformed and rec.malformed[0][1] == "ikev2"
    (sa,) = rec.sas
    m = sa.exchanges[0].request
    assert m is not None and m.malformed
    assert m.non_esp_marker is True
    assert m.transport == "tcp"

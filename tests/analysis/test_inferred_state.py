"""Without keys an IKEv2 SA whose IKE_AUTH was answered is established only when what follows
shows it (reconstruction/sa_state.py): ESP both ways after the IKE_AUTH response, or a later
exchange only an established IKE SA has. The state is then marked inferred, with its evidence;
an IKE_AUTH followed by nothing, by a retry, by ESP one way or by what may be the initiator's
AUTHENTICATION_FAILED notice (RFC 7296 §2.21.2) stays incomplete.

Captures are synthesized frame by frame (Ethernet, IPv4, UDP) from the project's IKEv2 encoder:
IKE_SA_INIT in clear with a real proposal (AES-GCM-16-256, so message sizes are those of that
cipher), everything after it as opaque SK payloads, as a capture without keys shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from checks_builders import TE, TK, TP, proposal, sa_payload, transform
from rich.console import Console

from ipsecdiag.pipeline import analyze_frames
from ipsecdiag.probe.record import ip_udp_packet
from ipsecdiag.reconstruction.model import Report
from ipsecdiag.report.childsa import child_sa_rows
from ipsecdiag.report.json import report_dict
from ipsecdiag.report.tables import IkeSaTable
from ipsecdiag.report.verdict import verdict
from ipsecdiag.wire import ikev2 as v2
from ipsecdiag.wire.registry import ExchangeType as X
from ipsecdiag.wire.registry import PayloadType

INI, RSP = "192.0.2.2", "198.51.100.2"
ETH = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
GCM = sa_payload(proposal(transform(TE, 20, 256), transform(TP, 5), transform(TK, 19)))
EMPTY_SK = 8 + 1 + 16  # IV, pad length, ICV: an SK payload with nothing inside (57-byte message)
NOTIFY_SK = 8 + 9 + 16  # the same holding an 8-byte Notify (AUTHENTICATION_FAILED): 65 bytes


@dataclass
class Capture:
    """Frames of one synthetic capture; IKE after IKE_SA_INIT and ESP use UDP 4500."""

    frames: list[tuple[int, float, int, bytes, int]] = field(default_factory=list)
    t0: float = 1_700_000_000.0

    def _add(self, at: float, src: str, dst: str, sport: int, dport: int, payload: bytes) -> None:
        pkt = ETH + ip_udp_packet((src, sport), (dst, dport), payload)
        self.frames.append((len(self.frames) + 1, self.t0 + at, 1, pkt, len(pkt)))

    def ike(
        self,
        at: float,
        spis: tuple[bytes, bytes],
        exchange: int,
        mid: int,
        *,
        from_initiator: bool,
        response: bool,
        sk: int = 80,
        payloads: tuple[v2.Payload, ...] | None = None,
    ) -> None:
        flags = (0x08 if from_initiator else 0) | (0x20 if response else 0)
        body = payloads if payloads is not None else (v2.SkPayload(PayloadType.IDi, bytes(sk)),)
        data = v2.serialize_message(v2.build_message(*spis, exchange, mid, body, flags=flags))
        a, b = (INI, RSP) if from_initiator else (RSP, INI)
        if exchange == X.IKE_SA_INIT:
            self._add(at, a, b, 500, 500, data)
        else:
            self._add(at, a, b, 4500, 4500, bytes(4) + data)  # non-ESP marker (RFC 3948 §2.2)

    def setup(self, at: float, spi: int, *, answered_auth: bool = True) -> tuple[bytes, bytes]:
        """IKE_SA_INIT in clear, then IKE_AUTH (encrypted; answered unless told otherwise)."""
        spis = (spi.to_bytes(8, "big"), (spi + 1).to_bytes(8, "big"))
        init = (GCM, v2.KePayload(19, bytes(64)), v2.NoncePayload(bytes(32)))
        self.ike(at, (spis[0], bytes(8)), X.IKE_SA_INIT, 0, from_initiator=True, response=False, payloads=init)
        self.ike(at + 0.002, spis, X.IKE_SA_INIT, 0, from_initiator=False, response=True, payloads=init)
        self.ike(at + 0.004, spis, X.IKE_AUTH, 1, from_initiator=True, response=False, sk=300)
        if answered_auth:
            self.ike(at + 0.006, spis, X.IKE_AUTH, 1, from_initiator=False, response=True, sk=250)
        return spis

    def esp(self, at: float, spi: int, *, from_initiator: bool, count: int = 3, port: int = 4500) -> None:
        a, b = (INI, RSP) if from_initiator else (RSP, INI)
        for seq in range(1, count + 1):
            self._add(at + seq * 0.2, a, b, port, port, spi.to_bytes(4, "big") + seq.to_bytes(4, "big") + bytes(40))

    def report(self) -> Report:
        """The capture in time order (frames renumbered), analysed without keys."""
        ordered = sorted(self.frames, key=lambda f: f[1])
        frames = [(n, ts, lt, data, size) for n, (_, ts, lt, data, size) in enumerate(ordered, 1)]
        return analyze_frames(iter(frames), source_name="synthetic", source_format="frames")


def _sa(r: Report, spi: int) -> object:
    return next(sa for sa in r.ike_sas if sa.spi_i == spi.to_bytes(8, "big"))


def test_esp_both_ways_after_ike_auth_means_established_inferred() -> None:
    c = Capture()
    c.setup(0.0, 0x10)
    c.esp(0.02, 0xC0000001, from_initiator=True)
    c.esp(0.03, 0xC0000002, from_initiator=False)
    r = c.report()
    (sa,) = r.ike_sas
    assert (sa.state, sa.state_basis) == ("established", "inferred")
    assert sa.state_evidence.startswith("ESP both ways after IKE_AUTH (frames 5, 6)"), sa.state_evidence
    d = report_dict(r)["ike_sas"][0]
    assert (d["state"], d["state_basis"]) == ("established", "inferred") and d["state_evidence"]
    assert verdict(r).text.startswith("1 tunnel up (inferred from its ESP), ESP both ways")
    (row,) = child_sa_rows(r)
    assert row.ike_sa == sa.key and row.state == "seen, negotiation encrypted (no keys)"
    console = Console(width=100, record=True, color_system=None)
    console.print(IkeSaTable(r))
    table = console.export_text()
    assert "established" in table and "(inferred)" in table


def test_a_later_informational_on_the_same_spis_means_established_inferred() -> None:
    c = Capture()
    spis = c.setup(0.0, 0x20)
    c.ike(30.0, spis, X.INFORMATIONAL, 2, from_initiator=True, response=False, sk=NOTIFY_SK)
    c.ike(30.002, spis, X.INFORMATIONAL, 2, from_initiator=False, response=True, sk=EMPTY_SK)
    (sa,) = c.report().ike_sas
    assert (sa.state, sa.state_basis) == ("established", "inferred")
    assert "INFORMATIONAL 30 s after the IKE_AUTH response" in sa.state_evidence


def test_create_child_sa_or_a_responder_request_means_established_inferred() -> None:
    c = Capture()
    spis = c.setup(0.0, 0x30)
    c.ike(1.0, spis, X.CREATE_CHILD_SA, 2, from_initiator=True, response=False)
    (sa,) = c.report().ike_sas
    assert (sa.state, sa.state_basis) == ("established", "inferred") and "CREATE_CHILD_SA" in sa.state_evidence
    c = Capture()
    spis = c.setup(0.0, 0x31)
    c.ike(1.0, spis, X.INFORMATIONAL, 0, from_initiator=False, response=False, sk=NOTIFY_SK)
    (sa,) = c.report().ike_sas
    assert sa.state == "established" and "started by the responder" in sa.state_evidence


def test_an_empty_informational_soon_after_is_a_liveness_check_not_the_failure_notice() -> None:
    c = Capture()
    spis = c.setup(0.0, 0x40)
    for at in (2.0, 3.0, 4.4):  # a retransmitted liveness check, unanswered: the peer died
        c.ike(at, spis, X.INFORMATIONAL, 2, from_initiator=True, response=False, sk=EMPTY_SK)
    (sa,) = c.report().ike_sas
    assert (sa.state, sa.state_basis) == ("established", "inferred")
    assert "(57 bytes) too small to carry the AUTHENTICATION_FAILED notify" in sa.state_evidence


def test_ike_auth_answered_then_nothing_is_not_established() -> None:
    c = Capture()
    c.setup(0.0, 0x50)
    c.setup(60.0, 0x60, answered_auth=False)  # something later, so the capture does not just end
    r = c.report()
    first = _sa(r, 0x50)
    assert (first.state, first.state_basis, first.state_evidence) == ("incomplete", "seen", "")
    # the state stays incomplete; the verdict says the capture does not show the outcome (review 2, item 7)
    assert "tunnel up" not in verdict(r).text and "1 of 2 IKE SAs outcome unknown" in verdict(r).text
    assert report_dict(r)["ike_sas"][0]["state_evidence"] is None


def test_ike_auth_answered_then_an_immediate_retry_without_esp_is_not_established() -> None:
    c = Capture()
    c.setup(0.0, 0x70)
    c.setup(0.5, 0x80)  # the initiator starts over at once: its AUTH (or ours) was rejected
    r = c.report()
    assert [sa.state for sa in r.ike_sas] == ["incomplete", "incomplete"]
    assert all(sa.state_basis == "seen" for sa in r.ike_sas)


def test_what_may_be_the_authentication_failed_notice_proves_nothing() -> None:
    """The initiator that rejects the responder's AUTH says so at once in an INFORMATIONAL of
    its own (message id 2) that the responder answers; its size fits a Notify."""
    c = Capture()
    spis = c.setup(0.0, 0x90)
    c.ike(0.01, spis, X.INFORMATIONAL, 2, from_initiator=True, response=False, sk=NOTIFY_SK)
    c.ike(0.012, spis, X.INFORMATIONAL, 2, from_initiator=False, response=True, sk=EMPTY_SK)
    (sa,) = c.report().ike_sas
    assert sa.state == "incomplete"


def test_esp_one_way_or_on_other_ports_proves_nothing() -> None:
    c = Capture()
    c.setup(0.0, 0xA0)
    c.esp(0.02, 0xC0000011, from_initiator=False)  # the responder installed; the initiator did not
    (sa,) = c.report().ike_sas
    assert sa.state == "incomplete"
    c = Capture()
    c.setup(0.0, 0xA1)
    c.esp(0.02, 0xC0000012, from_initiator=True, port=4501)  # not this IKE SA's ports
    c.esp(0.03, 0xC0000013, from_initiator=False, port=4501)
    (sa,) = c.report().ike_sas
    assert sa.state == "incomplete"


def test_esp_of_an_older_tunnel_is_not_evidence_for_a_newer_ike_sa() -> None:
    c = Capture()
    c.setup(0.0, 0xB0)
    c.esp(0.02, 0xC0000021, from_initiator=True, count=40)  # runs on past the second IKE_AUTH
    c.esp(0.03, 0xC0000022, from_initiator=False, count=40)
    c.setup(3.0, 0xB8)
    r = c.report()
    old, new = _sa(r, 0xB0), _sa(r, 0xB8)
    assert (old.state, old.state_basis) == ("established", "inferred")
    assert new.state == "incomplete"
    (row,) = child_sa_rows(r)
    assert row.ike_sa == old.key  # the SA that set up CHILD SAs last before the flows began
    # ESP that starts after the second IKE_AUTH response is the second SA's, not the first's
    c.esp(3.1, 0xC0000031, from_initiator=True)
    c.esp(3.1, 0xC0000032, from_initiator=False)
    r = c.report()
    assert _sa(r, 0xB8).state == "established" and _sa(r, 0xB0).state == "established"


def test_a_dead_peer_after_esp_reads_as_a_tunnel_lost_that_was_up() -> None:
    """The strongSwan dead-peer recording without keys (docs/failures/liveness.md): ESP both
    ways, then a liveness check retransmitted unanswered, then a new IKE_SA_INIT nobody answers."""
    c = Capture()
    spis = c.setup(0.0, 0xD0)
    c.esp(0.01, 0xC0000041, from_initiator=True)
    c.esp(0.012, 0xC0000042, from_initiator=False)
    for at in (2.0, 3.0, 4.4, 6.36):
        c.ike(at, spis, X.INFORMATIONAL, 2, from_initiator=True, response=False, sk=EMPTY_SK)
    c.setup(9.1, 0xE0, answered_auth=False)
    r = c.report()
    assert (_sa(r, 0xD0).state, _sa(r, 0xD0).state_basis) == ("established", "inferred")
    text = verdict(r).text
    assert "dpd-timeout" in text and "1 tunnel lost (peer stopped answering; up inferred from its ESP)" in text
    # only the retry, whose one request is the capture's last frame: in flight (review 2, item 6)
    assert ", 1 of 2 IKE SAs still negotiating when the capture ended" in text

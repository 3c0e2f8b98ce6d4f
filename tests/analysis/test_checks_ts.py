"""Traffic selectors: TS_UNACCEPTABLE with both sides and overlap, narrowing, IKEv1 proxy IDs."""

from __future__ import annotations

import ipaddress

import pytest
from checks_builders import exchange, ike_sa, msg, notify, report, run, sa_payload, ts, v1_notify
from checks_keyed import SAMPLES, analyze, needs_decryption

from ipsecdiag.diagnosis.checks.selectors import SelectorCheck
from ipsecdiag.protocol.selectors import Sel, intersect, sel_from_v1_id, uncovered
from ipsecdiag.reconstruction.model import Severity
from ipsecdiag.wire.ikev1_payloads import V1IdPayload
from ipsecdiag.wire.ikev2 import CfgAttribute, CpPayload
from ipsecdiag.wire.ikev2_sa import Proposal, Transform, TransformAttribute
from ipsecdiag.wire.registry import CfgType

ESP = sa_payload(Proposal(1, 3, b"\x01\x02\x03\x04", (Transform(1, 20, (TransformAttribute(14, 256),)),)))
NET1 = ("10.1.0.0", "10.1.0.255")
NET2 = ("10.2.0.0", "10.2.0.255")
NET3 = ("10.3.0.0", "10.3.0.255")
ANY = ("0.0.0.0", "255.255.255.255")


def sel(a: str, b: str, proto: int = 0, ports: tuple[int, int] = (0, 0xFFFF)) -> Sel:
    x, y = ipaddress.ip_address(a), ipaddress.ip_address(b)
    return Sel(x.version, int(x), int(y), proto, *ports)


def child(req_inner, resp_inner, *, mid=1, frame=3, kind="IKE_AUTH", src=None, dst=None):
    return exchange(
        kind,
        mid,
        msg(inner=req_inner, frame=frame, ts=frame, natt=True, src=src, dst=dst),
        msg(
            from_initiator=False,
            response=True,
            inner=resp_inner,
            frame=frame + 1,
            ts=frame + 0.1,
            natt=True,
            src=dst,
            dst=src,
        ),
    )


# -- selector arithmetic -----------------------------------------------------------------------


def test_uncovered_parts() -> None:
    req = sel("10.0.0.0", "10.0.255.255")
    got = [sel("10.0.1.0", "10.0.1.255"), sel("10.0.3.0", "10.0.255.255")]
    assert [s.text() for s in uncovered(req, got)] == ["10.0.0.0/24", "10.0.2.0/24"]
    assert uncovered(req, [sel("0.0.0.0", "255.255.255.255")]) == []
    # a selector for one protocol does not cover a request for all protocols
    assert uncovered(req, [sel("10.0.0.0", "10.0.255.255", proto=6)]) == [req]
    v6 = sel("2001:db8::", "2001:db8::ffff")
    assert uncovered(v6, [sel("2001:db8::", "2001:db8::ff")])[0].text() == "2001:db8::100-2001:db8::ffff"


def test_intersect() -> None:
    assert intersect(sel(*NET1), sel("10.1.0.128", "10.2.0.5")).text() == "10.1.0.128/25"
    assert intersect(sel(*NET1), sel(*NET2)) is None
    assert intersect(sel(*NET1, proto=6), sel(*NET1, proto=17)) is None
    assert intersect(sel(*NET1, proto=6, ports=(80, 80)), sel(*NET1)).text() == "10.1.0.0/24[tcp/80]"


def test_ikev1_client_ids() -> None:
    subnet = V1IdPayload(4, 0, 0, bytes([10, 1, 0, 0, 255, 255, 255, 0]))
    assert sel_from_v1_id(subnet).text() == "10.1.0.0/24"
    host = V1IdPayload(1, 17, 500, bytes([192, 0, 2, 1]))
    assert sel_from_v1_id(host).text() == "192.0.2.1/32[udp/500]"
    rng = V1IdPayload(7, 0, 0, bytes([10, 0, 0, 1, 10, 0, 0, 9]))
    assert sel_from_v1_id(rng).text() == "10.0.0.1-10.0.0.9"


# -- TS_UNACCEPTABLE ---------------------------------------------------------------------------


def test_rejection_shows_the_proposed_selectors() -> None:
    sa = ike_sa(child([ESP, ts("TSi", NET1), ts("TSr", NET3)], [notify("TS_UNACCEPTABLE")]))
    [f] = run(SelectorCheck(), report(sa))
    assert (f.id, f.severity) == ("ts-unacceptable", Severity.ERROR)
    assert "192.0.2.2 proposed TSi (its side) 10.1.0.0/24" in f.evidence
    assert "192.0.2.2 proposed TSr (the far side) 10.3.0.0/24" in f.evidence
    assert "`local_ts` must include 10.3.0.0/24" in f.remediation
    assert f.data["tsr"] == ["10.3.0.0/24"]


def test_rejection_compares_with_what_the_responder_serves_elsewhere() -> None:
    other_client = ("203.0.113.7", 4500)
    ok = ike_sa(
        child(
            [ESP, ts("TSi", ("10.7.0.0", "10.7.0.255")), ts("TSr", NET2)],
            [ESP, ts("TSi", ("10.7.0.0", "10.7.0.255")), ts("TSr", NET2)],
            frame=20,
            src=other_client,
            dst=("198.51.100.2", 4500),
        ),
        spi_i=b"\x99" * 8,
        initiator=other_client,
    )
    bad = ike_sa(child([ESP, ts("TSi", NET1), ts("TSr", NET3)], [notify("TS_UNACCEPTABLE")]))
    [f] = run(SelectorCheck(), report(bad, ok))
    assert any(e.startswith("198.51.100.2 protects 10.2.0.0/24 on its side") for e in f.evidence)
    assert "overlap of the requested TSr with 198.51.100.2's side: none" in f.evidence
    assert f.data["overlap_tsr"] == []
    assert "`remote_ts = 10.2.0.0/24`" in f.remediation and "rightsubnet=10.2.0.0/24" in f.remediation


def test_single_pair_required() -> None:
    sa = ike_sa(child([ESP, ts("TSi", NET1), ts("TSr", NET2)], [notify("SINGLE_PAIR_REQUIRED")]))
    [f] = run(SelectorCheck(), report(sa))
    assert "single pair of addresses" in f.explanation


# -- narrowing -----------------------------------------------------------------------------------


def test_narrowing_that_drops_a_requested_range_is_ts_narrowed_info() -> None:
    """A CHILD SA created with a subset of the request is not TS_UNACCEPTABLE (review #4)."""
    wide = ("10.2.0.0", "10.2.255.255")
    sa = ike_sa(child([ESP, ts("TSi", NET1), ts("TSr", wide)], [ESP, ts("TSi", NET1), ts("TSr", NET2)]))
    [f] = run(SelectorCheck(), report(sa))
    assert (f.id, f.severity, f.title) == ("ts-narrowed", Severity.INFO, "Traffic selectors narrowed")
    assert "TSr: asked 10.2.0.0/16, got 10.2.0.0/24" in " ".join(f.evidence)
    assert "proxy-ID" not in f.cause
    assert f.data["narrowed"] == [
        {
            "payload": "TSr",
            "requested": "10.2.0.0/16",
            "accepted": ["10.2.0.0/24"],
            "dropped": ["10.2.1.0-10.2.255.255"],
        }
    ]


def test_narrowing_of_everything_is_info() -> None:
    sa = ike_sa(child([ESP, ts("TSi", NET1), ts("TSr", ANY)], [ESP, ts("TSi", NET1), ts("TSr", NET2)]))
    [f] = run(SelectorCheck(), report(sa))
    assert (f.id, f.severity) == ("ts-narrowed", Severity.INFO)
    assert "expected" in f.explanation


def test_virtual_ip_narrowing_is_expected() -> None:
    cp = CpPayload(CfgType.CFG_REQUEST, (CfgAttribute(1),))
    sa = ike_sa(
        child(
            [cp, ESP, ts("TSi", ANY), ts("TSr", NET2)],
            [ESP, ts("TSi", ("10.9.0.1", "10.9.0.1")), ts("TSr", NET2)],
        )
    )
    assert run(SelectorCheck(), report(sa)) == []


def test_trigger_selector_covered_by_the_subnet_is_no_narrowing() -> None:
    trigger = ts("TSi", ("10.1.0.5", "10.1.0.5"), proto=6, ports=(40000, 40000))
    req_tsi = trigger.__class__(44, trigger.selectors + ts("TSi", NET1).selectors)
    sa = ike_sa(child([ESP, req_tsi, ts("TSr", NET2)], [ESP, ts("TSi", NET1), ts("TSr", NET2)]))
    assert run(SelectorCheck(), report(sa)) == []


@pytest.mark.parametrize("kind", ["IKE_AUTH", "CREATE_CHILD_SA"])
def test_identical_selectors_yield_nothing(kind) -> None:
    sa = ike_sa(
        child([ESP, ts("TSi", NET1), ts("TSr", NET2)], [ESP, ts("TSi", NET1), ts("TSr", NET2)], kind=kind)
    )
    assert run(SelectorCheck(), report(sa)) == []


# -- IKEv1 ----------------------------------------------------------------------------------------


def test_ikev1_quick_mode_proxy_id_rejection() -> None:
    ids = [
        V1IdPayload(4, 0, 0, bytes([10, 1, 0, 0, 255, 255, 255, 0])),
        V1IdPayload(4, 0, 0, bytes([10, 3, 0, 0, 255, 255, 255, 0])),
    ]
    qm = exchange("QUICK_MODE", 7, None, messages=[msg(inner=ids, frame=7, ts=7, version=1)])
    info = exchange(
        "INFORMATIONAL_V1",
        8,
        None,
        messages=[
            msg(
                from_initiator=False,
                inner=[v1_notify("INVALID_ID_INFORMATION", protocol=3)],
                frame=8,
                ts=7.1,
                version=1,
            )
        ],
        by_initiator=False,
    )
    [f] = run(SelectorCheck(), report(ike_sa(qm, info, version=1)))
    assert f.id == "ts-unacceptable"
    assert "Quick Mode IDci (initiator side): 10.1.0.0/24" in f.evidence
    assert "Quick Mode IDcr (responder side): 10.3.0.0/24" in f.evidence


# -- real capture ---------------------------------------------------------------------------------


@needs_decryption
def test_sample_ts_unacceptable() -> None:
    r = analyze(SAMPLES / "ikev2-ts-unacceptable.pcap", SAMPLES / "ikev2-ts-unacceptable.charon.log")
    f = r.findings[0]
    assert f.id == "ts-unacceptable" and f.severity == Severity.ERROR
    assert f.data["tsi"] == ["10.1.0.0/24"] and f.data["tsr"] == ["10.3.0.0/24"]

"""ESP flow diagnoses: one-way SA pairs, CHILD SAs without ESP, ESP for unannounced SPIs and
INVALID_SPI notifies (RFC 4303, RFC 7296 §1.5 / §3.10.1)."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest
from corpus import REPO_ROOT

from ipsecdiag.diagnosis.base import CheckContext
from ipsecdiag.diagnosis.checks.esp_flows import EspFlowCheck
from ipsecdiag.diagnosis.checks.notify import ErrorNotifyCheck
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import (
    ChildSaRecord,
    EspFlow,
    ExchangeRecord,
    Finding,
    IkeSaRecord,
    MessageRecord,
    Report,
    Severity,
    Transmission,
)
from ipsecdiag.wire import ikev2 as v2
from ipsecdiag.wire.registry import ExchangeType, NotifyType

SYNTH = REPO_ROOT / "sample_pcaps" / "synth"
SAMPLES = REPO_ROOT / "sample_pcaps"
INI, RES = "192.0.2.2", "198.51.100.2"
ESP_IDS = {"esp-one-way", "esp-missing", "esp-unknown-spi"}


def _load_synth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_synth", SYNTH / "make_synth.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_synth"] = mod
    spec.loader.exec_module(mod)
    return mod


ms = _load_synth()


def run(r: Report) -> list[Finding]:
    return list(EspFlowCheck().run(CheckContext(report=r)))


def message(
    *,
    frame: int,
    ts: float,
    from_initiator: bool,
    response: bool,
    encrypted: bool = True,
    decrypted: bool | None = None,
) -> MessageRecord:
    src, dst = (INI, RES) if from_initiator else (RES, INI)
    m = MessageRecord(src=src, dst=dst, sport=4500, dport=4500, size=300, is_response=response)
    m.from_initiator = from_initiator
    m.transmissions.append(Transmission((frame,), ts, 328, 1))
    m.encrypted = encrypted
    m.decrypted = decrypted
    return m


def ike_sa(auth_decrypted: bool | None, children: list[ChildSaRecord], t_auth: float = 1.0) -> IkeSaRecord:
    sa = IkeSaRecord(
        version=2, spi_i=b"\x01" * 8, spi_r=b"\x02" * 8, initiator=(INI, 500), responder=(RES, 500)
    )
    init = ExchangeRecord("IKE_SA_INIT", ExchangeType.IKE_SA_INIT, 0)
    init.request = message(frame=1, ts=0.0, from_initiator=True, response=False, encrypted=False)
    init.response = message(frame=2, ts=0.01, from_initiator=False, response=True, encrypted=False)
    auth = ExchangeRecord("IKE_AUTH", ExchangeType.IKE_AUTH, 1)
    auth.request = message(
        frame=3, ts=t_auth - 0.01, from_initiator=True, response=False, decrypted=auth_decrypted
    )
    auth.response = message(frame=4, ts=t_auth, from_initiator=False, response=True, decrypted=auth_decrypted)
    sa.exchanges += [init, auth]
    sa.child_sas += children
    sa.state = "established"
    return sa


def flow(spi: int, src: str, dst: str, packets: int, t0: float, t1: float, frame: int = 10) -> EspFlow:
    return EspFlow(
        spi=spi,
        src=src,
        dst=dst,
        encap="udp",
        sport=4500,
        dport=4500,
        packets=packets,
        first_ts=t0,
        last_ts=t1,
        first_frame=frame,
        last_frame=frame + packets,
    )


def report(sas: list[IkeSaRecord], flows: list[EspFlow], end: float) -> Report:
    r = Report(ike_sas=sas, esp_flows=flows)
    r.source.first_ts, r.source.last_ts = 0.0, end
    return r


CHILD = ChildSaRecord(spi_i=0xAAAA0001, spi_r=0xBBBB0001, created_in="IKE_AUTH", created_frame=4)


# -- esp-one-way ------------------------------------------------------------------------------
def test_one_way_with_ike_knowledge() -> None:
    r = report([ike_sa(True, [CHILD])], [flow(0xBBBB0001, INI, RES, 10, 1.5, 4.0)], end=5.0)
    (f,) = run(r)
    assert f.id == "esp-one-way" and f.severity == Severity.ERROR
    assert f.data == {"spi": "bbbb0001", "partner_spi": "aaaa0001", "packets": 10}


def test_both_directions_with_ike_knowledge_is_fine() -> None:
    flows = [flow(0xBBBB0001, INI, RES, 10, 1.5, 4.0), flow(0xAAAA0001, RES, INI, 10, 1.5, 4.0, 30)]
    assert run(report([ike_sa(True, [CHILD])], flows, end=5.0)) == []


def test_too_few_packets_or_capture_ending_is_not_one_way() -> None:
    assert run(report([ike_sa(True, [CHILD])], [flow(0xBBBB0001, INI, RES, 2, 1.5, 4.0)], end=5.0)) == []
    assert run(report([ike_sa(True, [CHILD])], [flow(0xBBBB0001, INI, RES, 5, 4.6, 4.9)], end=5.0)) == []


def test_one_way_from_capture_with_ike_in_both_directions() -> None:
    r = analyze_capture(SYNTH / "esp-one-way.pcap", checks=[EspFlowCheck()])
    (f,) = r.findings
    assert f.id == "esp-one-way" and f.severity == Severity.ERROR
    assert f.data["reverse_seen"] is True and f.data["packets"] == 20


def test_one_direction_capture_is_only_a_warning(tmp_path: Path) -> None:
    cap = ms.Capture("x", "", [])
    ms._esp_flow(cap, random.Random(5), ms.A, ms.B, 0x51, list(range(1, 30)), 0.0, 0.1)
    p = tmp_path / "oneway.pcap"
    cap.write(p)
    (f,) = analyze_capture(p, checks=[EspFlowCheck()]).findings
    assert f.id == "esp-one-way" and f.severity == Severity.WARNING
    assert "one direction only" in f.explanation


def test_reverse_burst_right_after_is_an_answer(tmp_path: Path) -> None:
    """Three packets one way and the replies a moment later (not overlapping) are a pair."""
    cap = ms.Capture("x", "", [])
    rng = random.Random(8)
    ms._esp_flow(cap, rng, ms.A, ms.B, 0x71, [1, 2, 3], 0.0, 0.001)
    ms._esp_flow(cap, rng, ms.B, ms.A, 0x72, list(range(1, 7)), 0.05, 0.05, outbound=False)
    ms._esp_flow(cap, rng, ms.A, ms.B, 0x73, [1], 5.0, 0.1)  # the capture goes on
    p = tmp_path / "burst.pcap"
    cap.write(p)
    assert analyze_capture(p, checks=[EspFlowCheck()]).findings == []


def test_reverse_flow_at_other_times_does_not_count(tmp_path: Path) -> None:
    cap = ms.Capture("x", "", [])
    rng = random.Random(6)
    ms._esp_flow(cap, rng, ms.A, ms.B, 0x61, list(range(1, 11)), 0.0, 0.1)
    ms._esp_flow(cap, rng, ms.B, ms.A, 0x62, list(range(1, 11)), 0.05, 0.1, outbound=False)
    ms._esp_flow(cap, rng, ms.A, ms.B, 0x63, list(range(1, 21)), 20.0, 0.1)  # new SA, no answer
    p = tmp_path / "late.pcap"
    cap.write(p)
    (f,) = analyze_capture(p, checks=[EspFlowCheck()]).findings
    assert f.data["spis"] == ["00000063"] and f.severity == Severity.ERROR


@pytest.mark.parametrize(
    "name", ["ikev2-psk-ok", "ikev2-cbc-sha256-ok", "ikev1-main-psk", "ikev2-invalid-ke"]
)
def test_healthy_samples_have_no_esp_flow_findings(name: str) -> None:
    r = analyze_capture(SAMPLES / f"{name}.pcap")
    assert not {f.id for f in r.findings} & ESP_IDS


# -- esp-missing --------------------------------------------------------------------------------
def test_child_sa_without_esp() -> None:
    (f,) = run(report([ike_sa(True, [CHILD])], [], end=60.0))
    assert f.id == "esp-missing" and f.severity == Severity.WARNING
    assert f.data == {"spi_i": "aaaa0001", "spi_r": "bbbb0001"}


def test_child_sa_without_esp_but_capture_too_short() -> None:
    assert run(report([ike_sa(True, [CHILD])], [], end=5.0)) == []


def test_no_esp_without_keys_is_reported_once_per_peer_pair() -> None:
    sas = [ike_sa(None, []), ike_sa(None, [])]
    sas[1].spi_i = b"\x03" * 8
    (f,) = run(report(sas, [], end=60.0))
    assert f.id == "esp-missing" and len(f.evidence) == 2


def test_no_esp_after_ike_auth_without_keys_is_weak() -> None:
    (f,) = run(report([ike_sa(None, [])], [], end=60.0))
    assert f.id == "esp-missing" and f.severity == Severity.INFO
    assert "weaker" in f.explanation
    assert (
        run(
            report(
                [ike_sa(None, [])],
                [flow(0x77, INI, RES, 3, 2.0, 3.0), flow(0x78, RES, INI, 3, 2.0, 3.0)],
                60.0,
            )
        )
        == []
    )


# -- esp-unknown-spi ------------------------------------------------------------------------------
def test_esp_for_spi_no_decrypted_exchange_announced() -> None:
    flows = [
        flow(0xBBBB0001, INI, RES, 10, 1.5, 4.0),
        flow(0xAAAA0001, RES, INI, 10, 1.5, 4.0, 30),
        flow(0xDEAD0001, INI, RES, 5, 2.0, 3.0, 50),
    ]
    (f,) = run(report([ike_sa(True, [CHILD])], flows, end=5.0))
    assert f.id == "esp-unknown-spi" and f.data == {"spis": ["dead0001"]}


def test_unknown_spi_not_flagged_without_decryption_or_before_the_exchange() -> None:
    stray = flow(0xDEAD0001, INI, RES, 5, 2.0, 3.0, 50)
    paired = [flow(0xBBBB0001, INI, RES, 10, 1.5, 4.0), flow(0xAAAA0001, RES, INI, 10, 1.5, 4.0, 30)]
    # keys missing: the IKE_AUTH could have created anything
    assert [f.id for f in run(report([ike_sa(False, [CHILD])], [*paired, stray], 5.0))] == []
    # the ESP started before the IKE SA: an SA from before the capture
    early = flow(0xDEAD0001, INI, RES, 5, 0.2, 3.0, 50)
    assert run(report([ike_sa(True, [CHILD], t_auth=1.0)], [*paired, early], 5.0)) == []


def _invalid_spi_sa(spi: bytes) -> IkeSaRecord:
    sa = ike_sa(True, [CHILD])
    info = ExchangeRecord("INFORMATIONAL", ExchangeType.INFORMATIONAL, 2, initiated_by_initiator=False)
    m = message(frame=40, ts=3.0, from_initiator=False, response=False, decrypted=True)
    m.inner = (v2.NotifyPayload(3, b"", NotifyType.INVALID_SPI, spi),)
    m.notifies = ["INVALID_SPI"]
    info.request = m
    sa.exchanges.append(info)
    sa.error_notifies.append("INVALID_SPI")
    return sa


def test_invalid_spi_notify() -> None:
    sa = _invalid_spi_sa(bytes.fromhex("deadbeef"))
    stray = flow(0xDEADBEEF, INI, RES, 5, 2.0, 3.5, 50)
    paired = [flow(0xBBBB0001, INI, RES, 10, 1.5, 4.0), flow(0xAAAA0001, RES, INI, 10, 1.5, 4.0, 30)]
    found = run(report([sa], [*paired, stray], 5.0))
    notify = [f for f in found if f.title == "Peer reports INVALID_SPI"]
    (f,) = notify
    assert f.data == {"spis": ["deadbeef"]} and 40 in f.frames
    assert any("0xdeadbeef" in e for e in f.evidence)
    # ... and the generic error-notify check leaves it to this one
    r = report([sa], [], 5.0)
    assert list(ErrorNotifyCheck().run(CheckContext(report=r))) == []


def test_one_way_with_decrypted_ike_from_a_recorded_tunnel(tmp_path: Path) -> None:
    """The strongSwan sample with the responder's ESP removed: the CHILD SA from the decrypted
    IKE_AUTH names the silent partner SPI."""
    from ipsecdiag.capture.reader import open_capture
    from ipsecdiag.capture.writer import PcapWriter
    from ipsecdiag.decryption.ikev2 import DecryptionSetup
    from ipsecdiag.keys.load import load_keys
    from ipsecdiag.keys.model import KeyStore

    out = tmp_path / "no-return-esp.pcap"
    responder = bytes([198, 51, 100, 2])
    with open_capture(SAMPLES / "ikev2-psk-ok.pcap") as cap, PcapWriter(out, 1) as w:
        for _fr, ts, _lt, data, _orig in cap.frames():
            is_esp = data[23] == 17 and data[42:46] != bytes(4)
            if not (is_esp and data[26:30] == responder):
                w.write(ts, data)
    store = KeyStore()
    store.extend(load_keys(SAMPLES / "ikev2-psk-ok.charon.log"))
    r = analyze_capture(out, keys=store, decryption=DecryptionSetup(), checks=[EspFlowCheck()])
    (f,) = r.findings
    assert f.id == "esp-one-way" and f.severity == Severity.ERROR
    assert f.data == {"spi": "eb0f275a", "partner_spi": "cfaf6fd7", "packets": 10}
    assert any("ICMP" in e for e in f.evidence)  # the decrypted inner traffic: pings expect replies


def _synth_keyed(name: str) -> Report:
    from ipsecdiag.decryption.ikev2 import DecryptionSetup
    from ipsecdiag.keys.load import load_keys
    from ipsecdiag.keys.model import KeyStore

    store = KeyStore()
    store.extend(load_keys(SYNTH / f"{name}.keys.toml"))
    return analyze_capture(SYNTH / f"{name}.pcap", keys=store, decryption=DecryptionSetup())


def test_unknown_spi_and_invalid_spi_from_decrypted_ike() -> None:
    r = _synth_keyed("esp-unknown-spi")
    found = [f for f in r.findings if f.id == "esp-unknown-spi"]
    assert sorted(f.title for f in found) == ["ESP for an unknown SPI", "Peer reports INVALID_SPI"]
    assert all(f.data["spis"] == ["dead0001"] for f in found)
    assert not {f.id for f in r.findings} & {"error-notify", "esp-one-way", "esp-missing"}
    # without keys the CHILD SA is unknown: the stray SPI may predate the capture
    plain = analyze_capture(SYNTH / "esp-unknown-spi.pcap")
    assert not {f.id for f in plain.findings} & {"esp-unknown-spi"}


def test_child_sa_without_esp_from_decrypted_ike() -> None:
    r = _synth_keyed("esp-missing")
    (f,) = [f for f in r.findings if f.id == "esp-missing"]
    assert f.severity == Severity.WARNING and f.data == {"spi_i": "c0de0201", "spi_r": "c0de0202"}
    # without keys: only the weak, info-level variant
    (g,) = [f for f in analyze_capture(SYNTH / "esp-missing.pcap").findings if f.id == "esp-missing"]
    assert g.severity == Severity.INFO

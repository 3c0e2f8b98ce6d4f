"""probe scan's session against the project's own IKEv2 responder engine: in memory (the
engine answers each datagram) and over loopback UDP through the probe's driver."""

from __future__ import annotations

import time

import pytest
from loopback import loopback_peer

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine import ChildConfig, Endpoint, Identity, IkeConfig, IkeSa, PskAuth, Role
from ipsecdiag.engine.scan import ScanSession, ScanSettings
from ipsecdiag.engine.scan_plan import ScanPlanner, algos_of
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.probe.scan import ScanOptions, scan
from ipsecdiag.protocol.proposal_strings import parse_proposals
from ipsecdiag.protocol.suites import ENCR, INTEG, KE, PRF, Algo

GW = Endpoint("192.0.2.1", 500)
ME = Endpoint("192.0.2.2", 500)


def responder_config(ike: str, **kw: object) -> IkeConfig:
    return IkeConfig(
        ike_proposals=parse_proposals(ike, protocol="ike"),
        child=ChildConfig(parse_proposals("aes256gcm16", protocol="esp")),
        local_id=Identity.parse("gw.example.org"),
        auth=PskAuth(SecretBytes(b"psk")),
        **kw,  # type: ignore[arg-type]
    )


def engine_reply(cfg: IkeConfig, seed: str = "gw"):
    """A fresh responder IkeSa per request, as a gateway creates one per IKE_SA_INIT."""
    rng = DeterministicRandom(seed)
    made: list[IkeSa] = []

    def reply(data: bytes, now: float) -> list[bytes]:
        if data[17] >> 4 != 2:
            return []  # the engine speaks IKEv2 only: IKEv1 probes go unanswered
        r = IkeSa(cfg, role=Role.RESPONDER, rng=rng, now=now, local=GW, remote=ME)
        made.append(r)
        r.receive_datagram(data, ME, GW, now)
        return [d.payload for d in r.datagrams_to_send(now)]

    return reply, made


def run_in_memory(cfg: IkeConfig, settings: ScanSettings | None = None) -> ScanSession:
    settings = settings or ScanSettings(ikev1=False)
    reply, _ = engine_reply(cfg)
    now = 0.0
    s = ScanSession(ScanPlanner(), rng=DeterministicRandom("scan"), local=ME, remote=GW, now=now, settings=settings)
    for _ in range(2000):
        if s.done:
            return s
        out = s.datagrams_to_send(now)
        for d in out:
            for answer in reply(d.payload, now):
                s.receive_datagram(answer, GW, ME, now + 0.01)
        if not out:
            t = s.get_timer()
            assert t is not None
            now = max(now, t)
            s.handle_timer(now)
        now += 0.02
    raise AssertionError("scan did not end")


def configured(ike: str) -> dict[int, set[Algo]]:
    out: dict[int, set[Algo]] = {t: set() for t in (ENCR, PRF, INTEG, KE)}
    for p in parse_proposals(ike, protocol="ike"):
        for a in algos_of(p):
            out[a.type].add(a)
    return out


@pytest.mark.parametrize(
    "ike",
    [
        "aes256gcm16-prfsha256-ecp256",
        "aes128-aes256-sha256-sha1-modp2048-ecp384, chacha20poly1305-prfsha384-curve25519",
    ],
)
def test_scan_against_the_engine_responder_in_memory(ike: str) -> None:
    s = run_in_memory(responder_config(ike))
    r = s.planner.result
    assert r.complete, r.anomalies
    want = configured(ike)
    for t in want:
        assert set(r.accepted[t]) == want[t]
    assert r.full_answers == 1  # the baseline only (the engine answers ADDKE offers NO_PROPOSAL_CHOSEN)
    assert s.obs.nat_local is False and s.obs.nat_remote is False
    assert "IKEV2_FRAGMENTATION_SUPPORTED" in s.obs.notifies


def test_cookie_demand_is_met_and_reported() -> None:
    s = run_in_memory(responder_config("aes256gcm16-prfsha256-ecp256", cookie_secret=SecretBytes(b"k" * 32)))
    assert s.obs.cookie_demanded and s.planner.result.complete
    assert {a.label for a in s.planner.result.accepted[KE]} == {"ECP_256"}


def test_silent_gateway_ends_after_retries() -> None:
    now = 0.0
    s = ScanSession(ScanPlanner(), rng=DeterministicRandom("s"), local=ME, remote=GW, now=now, settings=ScanSettings(timeout=1.0, tries=2))
    sent = 0
    for _ in range(100):
        sent += len(s.datagrams_to_send(now))
        if s.done:
            break
        t = s.get_timer()
        assert t is not None
        now = t
        s.handle_timer(now)
    assert s.done and s.planner.result.silent
    assert sent == 2 + 2 + 2  # IKEv2 baseline, IKEv1 main, aggressive: two sends each
    assert s.obs.ikev1["main"].answered is False


def test_loopback_udp_through_the_probe_driver(tmp_path) -> None:
    cfg = responder_config("aes128gcm16-prfsha256-ecp256-modp2048")
    reply, _ = engine_reply(cfg)
    with loopback_peer(lambda d: reply(d, time.monotonic()), max_datagrams=400) as (port, got):
        opts = ScanOptions(gateway="127.0.0.1", remote_port=port, local_port=0, rate=50.0, max_time=30.0, ikev1=False, timeout=0.5, tries=2, write=tmp_path / "scan.pcapng")
        res = scan(opts, rng=DeterministicRandom("udp"))
    r = res.plan
    assert r.complete
    assert {a.label for a in r.accepted[KE]} == {"ECP_256", "MODP_2048"}
    assert {a.label for a in r.accepted[ENCR]} == {"ENCR_AES_GCM_16_128"}
    assert res.counters.sent == len(got) == r.queries
    # the rate limit, measured on the recording's timestamps (token bucket, burst 1)
    sent = [d.ts for d in res.record.datagrams if d.outgoing]
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= 1 / 50.0 - 0.002
    files = res.record.write(tmp_path / "scan.pcapng")
    assert files.frames == len(res.record.datagrams) and files.keyfile is None


def test_ml_kem_additional_exchange_from_a_full_answer() -> None:
    # RFC 9370: the engine chooses the ADDKE proposal only when offered; the scan's ADDKE query
    # asks with the baseline's transforms plus ADDKE1 candidates
    s = run_in_memory(responder_config("aes256gcm16-prfsha256-ecp256-ke1_mlkem768, aes256gcm16-prfsha256-ecp256"))
    r = s.planner.result
    assert [a.label for a in r.addke] == ["ADDKE1_ML_KEM_768"] and not r.addke_ignored
    assert r.full_answers == 2  # the baseline and the ADDKE answer: two half-open SAs


def test_vendor_ids_and_redirect_are_reported() -> None:
    from ipsecdiag.wire.vendors import KNOWN_VENDOR_IDS, identify_vendor

    vid = next(e.value for e in KNOWN_VENDOR_IDS if e.name == "strongSwan")
    s = run_in_memory(responder_config("aes256gcm16-prfsha256-ecp256", vendor_ids=(vid,)))
    assert [identify_vendor(v) for v in s.obs.vendor_ids] == ["strongSwan"]
    moved = run_in_memory(responder_config("aes256gcm16-prfsha256-ecp256", redirect_to=Endpoint("192.0.2.99", 500)))
    assert moved.obs.redirect == "192.0.2.99"
    assert any("REDIRECT" in a for a in moved.planner.result.anomalies) and not moved.planner.result.complete

"""A hostile or broken gateway against probe scan's session: garbage, truncated and mutated
answers, choices never offered. The session never raises, counts what it drops and ends."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scan_engine import GW, ME, engine_reply, responder_config

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine.scan import ScanSession, ScanSettings
from ipsecdiag.engine.scan_plan import ScanPlanner
from ipsecdiag.wire.ikev2 import FLAG_RESPONSE, build_message, serialize_message
from ipsecdiag.wire.ikev2_payloads import KePayload, NoncePayload
from ipsecdiag.wire.ikev2_sa import Proposal, SaPayload, Transform
from ipsecdiag.wire.registry import ExchangeType


def drive(answer, max_steps: int = 3000) -> ScanSession:
    now = 0.0
    s = ScanSession(ScanPlanner(), rng=DeterministicRandom("h"), local=ME, remote=GW, now=now, settings=ScanSettings(timeout=0.5, tries=2))
    for _ in range(max_steps):
        if s.done:
            return s
        out = s.datagrams_to_send(now)
        for d in out:
            for data in answer(d.payload, now):
                s.receive_datagram(data, GW, ME, now)
        if not out:
            t = s.get_timer()
            assert t is not None
            now = max(now, t)
            s.handle_timer(now)
    raise AssertionError("the session did not end")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6), st.integers(0, 120))
def test_mutated_engine_answers_never_raise(seed: int, flips: list[tuple[int, int]], cut: int) -> None:
    reply, _ = engine_reply(responder_config("aes128-sha256-modp2048"), seed=str(seed))

    def mutated(data: bytes, now: float) -> list[bytes]:
        out = []
        for a in reply(data, now):
            b = bytearray(a)
            for pos, val in flips:
                if pos < len(b):
                    b[pos] = val
            out.append(bytes(b[: len(b) - cut] if cut < len(b) else b[:cut]))
        return out

    s = drive(mutated)
    assert s.done


def test_garbage_is_counted_and_the_scan_ends() -> None:
    s = drive(lambda data, now: [b"\x00" * 10, data[:8] + b"\xff" * 40, b"x" * 3000])
    assert s.done and s.obs.malformed >= 2 and s.planner.result.silent


def test_a_choice_never_offered_is_an_anomaly() -> None:
    def liar(data: bytes, now: float) -> list[bytes]:
        if data[17] >> 4 != 2:
            return []
        never = Proposal(1, 1, b"", (Transform(1, 31337), Transform(2, 5), Transform(4, 19)))
        msg = build_message(data[:8], b"R" * 8, ExchangeType.IKE_SA_INIT, 0, [SaPayload((never,)), KePayload(19, b"k" * 64), NoncePayload(b"n" * 32)], flags=FLAG_RESPONSE)
        return [serialize_message(msg)]

    r = drive(liar).planner.result
    assert any("invalid choice" in a for a in r.anomalies) and r.full_answers == 0

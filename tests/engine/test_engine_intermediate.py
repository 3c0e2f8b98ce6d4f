"""RFC 9370 additional key exchanges over RFC 9242 IKE_INTERMEDIATE, ML-KEM included."""

from __future__ import annotations

import pytest
from engine_net import of, pair, psk_configs

from ipsecdiag.crypto.ke import supported_groups
from ipsecdiag.engine import State, events
from ipsecdiag.wire.registry import KeGroup


def _exchanges(net) -> list[int]:
    return [w.d.payload[18] for w in net.log]


@pytest.mark.parametrize(
    ("ike", "groups"),
    [
        ("aes256gcm16-prfsha256-ecp256-ke1_mlkem768", [KeGroup.ML_KEM_768]),
        ("aes256gcm16-prfsha384-x25519-ke1_mlkem1024", [KeGroup.ML_KEM_1024]),
        ("aes128-sha256-modp2048-ke1_mlkem512-ke2_ecp384", [KeGroup.ML_KEM_512, KeGroup.ECP_384]),
    ],
)
def test_additional_key_exchanges_complete(ike: str, groups: list[int]) -> None:
    if any(g not in supported_groups() for g in groups):
        pytest.skip("this build has no ML-KEM")
    net = pair(*psk_configs(ike))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    sent = [s for s in of(net.events_i, events.Sent) if s.exchange == "IKE_INTERMEDIATE" and not s.retransmission]
    assert [s.message_id for s in sent] == list(range(1, len(groups) + 1))  # one exchange each
    auth = next(s for s in of(net.events_i, events.Sent) if s.exchange == "IKE_AUTH")
    assert auth.message_id == len(groups) + 1
    assert net.i.keys == net.r.keys
    assert net.i.neg.int_auth_i == net.r.neg.int_auth_i and net.i.neg.int_auth_r == net.r.neg.int_auth_r
    assert of(net.events_i, events.ChildSaUp)


def test_keys_change_after_each_additional_exchange() -> None:
    if KeGroup.ML_KEM_768 not in supported_groups():
        pytest.skip("this build has no ML-KEM")
    net = pair(*psk_configs("aes256gcm16-prfsha256-ecp256-ke1_mlkem768"))
    net.i.initiate(0.0)
    net.run()
    first = of(net.events_i, events.IkeSaInitDone)[0].keys
    assert net.i.keys.sk_d != first.sk_d and net.i.keys.spi_i == first.spi_i


def test_responder_without_addke_answers_none_and_skips_intermediate() -> None:
    from dataclasses import replace

    from ipsecdiag.wire.ikev2_sa import Transform

    ci, cr = psk_configs("aes256gcm16-prfsha256-ecp256-ke1_mlkem768", r_ike="aes256gcm16-prfsha256-ecp256")
    p = ci.ike_proposals[0]
    ci = replace(ci, ike_proposals=(replace(p, transforms=(*p.transforms, Transform(6, 0))),))  # NONE: optional
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and 43 not in _exchanges(net)


def test_fragmented_intermediate_with_ml_kem_1024() -> None:
    if KeGroup.ML_KEM_1024 not in supported_groups():
        pytest.skip("this build has no ML-KEM")
    net = pair(*psk_configs("aes256gcm16-prfsha384-ecp384-ke1_mlkem1024", i_kw={"fragment_size": 1000}, r_kw={"fragment_size": 1000}))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    sent = [s for s in of(net.events_i, events.Sent) if s.exchange == "IKE_INTERMEDIATE"]
    assert sent and sent[0].fragments >= 2

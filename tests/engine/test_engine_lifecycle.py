"""A whole IKE SA life per credential kind, over a lossy, duplicating, reordering transport:
IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA (new, child rekey with PFS, IKE rekey), liveness, DELETE."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from engine_certs import ca, end_entity
from engine_net import Wire, of, pair, psk_configs

from ipsecdiag.engine import CertAuth, Identity, State, events


def _configs(kind: str):
    ci, cr = psk_configs("aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384")
    if kind == "psk":
        return ci, cr
    ki, di = end_entity("client@example.org", kind)
    kr, dr = end_entity("gw.example.org", kind)
    anchors = (ca()[1],)
    return (
        replace(ci, auth=CertAuth(ki, (di,)), ca_certs=anchors),
        replace(cr, auth=CertAuth(kr, (dr,)), ca_certs=anchors),
    )


@pytest.mark.parametrize("kind", ["psk", "rsa", "ecdsa"])
@pytest.mark.parametrize("lossy", [False, True], ids=["clean", "lossy"])
def test_lifecycle(kind: str, lossy: bool) -> None:
    rnd = random.Random(f"{kind}-{lossy}")

    def weather(w: Wire, n: int) -> list[bytes]:
        if not lossy:
            return [w.d.payload]
        x = rnd.random()
        if x < 0.15:
            return []  # lost
        if x < 0.25:
            return [w.d.payload, w.d.payload]  # duplicated
        return [w.d.payload]

    net = pair(*_configs(kind), seed=kind)
    net.mangle = weather
    net.reorder = lossy
    net.i.initiate(0.0)
    net.run(max_steps=2000, max_time=10_000)
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    first = next(iter(net.i.child_sas))
    net.i.create_child(net.now)
    net.i.rekey_child(first, net.now)
    net.r.rekey_ike(net.now)
    net.i.send_liveness(net.now)
    net.run(max_steps=2000, max_time=20_000)
    assert len(net.i.child_sas) == len(net.r.child_sas) == 2
    assert set(net.i.child_sas) == {c.spi_out for c in net.r.child_sas.values()}
    assert of(net.events_i, events.IkeSaRekeyed) and of(net.events_r, events.IkeSaRekeyed)
    assert net.i.keys == net.r.keys
    net.i.delete(net.now)
    net.run(max_steps=2000, max_time=30_000)
    assert net.i.state is State.CLOSED and net.r.state is State.CLOSED
    assert not of(net.events_i, events.Timeout) and not of(net.events_r, events.Timeout)


def test_delete_before_established_is_local() -> None:
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.i.datagrams_to_send(0.0)
    net.i.delete(0.0)
    assert net.i.state is State.CLOSED and net.i.datagrams_to_send(0.0) == []
    net.i.delete(0.0)  # again: nothing
    assert of(list(iter(net.i.next_event, None)), events.IkeSaDeleted)[0].reason.startswith("abandoned")


def test_identity_parse_spellings() -> None:
    assert Identity.parse("10.0.0.1").id_type == 1
    assert Identity.parse("gw.example").id_type == 2
    assert Identity.parse("a@b").id_type == 3
    assert Identity.parse("2001:db8::1").id_type == 5
    assert Identity.parse("CN=x, O=y").id_type == 9
    assert Identity.parse("keyid:00ff") == Identity(11, b"\x00\xff")
    with pytest.raises(ValueError):
        Identity.parse("XX=1")

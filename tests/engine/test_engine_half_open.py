"""A responder gives up a half-open IKE SA (IKE_SA_INIT answered, no IKE_AUTH) after
IkeConfig.half_open_timeout seconds of the caller's clock (strongSwan: half_open_timeout)."""

from __future__ import annotations

import pytest
from engine_net import of, pair, psk_configs

from ipsecdiag.engine import State, events


def test_half_open_responder_expires_with_an_event() -> None:
    ci, cr = psk_configs(r_kw={"half_open_timeout": 30.0})
    net = pair(ci, cr)
    net.mangle = lambda w, i: [w.d.payload] if (i == 0 or not w.to_responder) else []  # only IKE_SA_INIT reaches it
    net.i.initiate(0.0)
    net.run(max_time=100.0)
    assert net.r.state is State.CLOSED
    exp = of(net.events_r, events.HalfOpenExpired)
    assert len(exp) == 1 and exp[0].after == pytest.approx(30.0) and exp[0].state == "init-done"
    deleted = of(net.events_r, events.IkeSaDeleted)
    assert deleted and "half-open" in deleted[0].reason and not deleted[0].by_peer


def test_established_responder_does_not_expire() -> None:
    ci, cr = psk_configs(r_kw={"half_open_timeout": 5.0})
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    net.now = 100.0
    net.r.handle_timer(net.now)
    assert net.r.state is State.ESTABLISHED and net.r.get_timer() is None
    assert not of(net.events_r, events.HalfOpenExpired)


def test_half_open_expiry_can_be_turned_off() -> None:
    ci, cr = psk_configs(r_kw={"half_open_timeout": None})
    net = pair(ci, cr)
    net.mangle = lambda w, i: [w.d.payload] if (i == 0 or not w.to_responder) else []
    net.i.initiate(0.0)
    net.run(max_time=1000.0)
    assert net.r.state is State.INIT_DONE and net.r.get_timer() is None


def test_half_open_timeout_is_validated() -> None:
    with pytest.raises(ValueError, match="half_open_timeout"):
        psk_configs(r_kw={"half_open_timeout": 0.0})

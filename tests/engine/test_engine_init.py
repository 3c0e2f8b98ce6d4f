"""IKE_SA_INIT paths: KE groups, INVALID_KE_PAYLOAD retry, COOKIE, NAT-T, forced encapsulation,
REDIRECT, NO_PROPOSAL_CHOSEN (RFC 7296 §1.2, §2.6, §2.7, §2.23; RFC 5685)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_net import of, pair, psk_configs

from ipsecdiag.crypto.ke import supported_groups
from ipsecdiag.engine import Endpoint, State, events
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.protocol.suites import _SS_KE
from ipsecdiag.wire.registry import KeGroup, NotifyType

_GROUPS = [g for g in supported_groups() if g in _SS_KE and g not in (KeGroup.ML_KEM_512, KeGroup.ML_KEM_768, KeGroup.ML_KEM_1024)]


@pytest.mark.parametrize("group", _GROUPS, ids=lambda g: KeGroup(g).name)
def test_every_ke_group_completes(group: int) -> None:
    ike = f"aes128-sha256-{_SS_KE[group]}"
    net = pair(*psk_configs(ike))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    assert of(net.events_i, events.IkeSaInitDone)[0].ke_group == group
    assert net.i.keys == net.r.keys


@pytest.mark.parametrize("group", [KeGroup.ML_KEM_768, KeGroup.ML_KEM_1024], ids=lambda g: KeGroup(g).name)
def test_ml_kem_as_the_only_key_exchange(group: int) -> None:
    # Not RFC 9370 (no IKE_INTERMEDIATE here): ML-KEM as the IKE_SA_INIT KE method itself.
    if group not in supported_groups():
        pytest.skip("this cryptography build has no ML-KEM")
    net = pair(*psk_configs(f"aes256gcm16-prfsha384-{_SS_KE[group]}"))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.i.keys == net.r.keys


def test_invalid_ke_payload_retry_with_the_requested_group() -> None:
    net = pair(*psk_configs("aes128-sha256-ecp256-modp2048", r_ike="aes128-sha256-modp2048"))
    net.i.initiate(0.0)
    net.run()
    retry = of(net.events_i, events.KeRetry)
    assert retry == [events.KeRetry(KeGroup.MODP_2048, KeGroup.ECP_256)]
    assert of(net.events_r, events.KeRetry)[0].sent_by_us
    assert net.i.state is State.ESTABLISHED
    # The responder answered INVALID_KE_PAYLOAD statelessly (zero responder SPI).
    first_answer = next(w for w in net.log if not w.to_responder)
    assert first_answer.d.payload[8:16] == bytes(8)


def test_invalid_ke_payload_for_a_group_we_did_not_offer_is_fatal() -> None:
    net = pair(*psk_configs("aes128-sha256-ecp256", r_ike="aes128-sha256-ecp256-modp2048"))
    # The responder only accepts MODP-2048 with this proposal order? No: it picks ECP-256. Force it:
    net = pair(*psk_configs("aes128-sha256-ecp256", r_ike="aes128-sha256-modp2048"))
    net.i.initiate(0.0)
    net.run()
    err = of(net.events_i, events.ProtocolError)[0]
    assert err.notify == NotifyType.NO_PROPOSAL_CHOSEN and err.received and err.fault == "ours"
    assert of(net.events_r, events.ProtocolError)[0].notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert net.i.state is State.CLOSED


def test_no_proposal_chosen() -> None:
    net = pair(*psk_configs("aes128-sha256-ecp256", r_ike="aes256gcm16-prfsha256-ecp256"))
    net.i.initiate(0.0)
    net.run()
    err = of(net.events_i, events.ProtocolError)[0]
    assert (err.notify_name, err.received, err.fault, err.fatal) == ("NO_PROPOSAL_CHOSEN", True, "ours", True)


def test_cookie_round_trip_and_rotation() -> None:
    ci, cr = psk_configs(r_kw={"cookie_secret": SecretBytes(b"k" * 32), "cookie_lifetime": 60.0})
    net = pair(ci, cr)
    net.now = 59.0
    net.i.initiate(net.now)
    net.run()
    assert of(net.events_i, events.CookieRequested) and of(net.events_r, events.CookieRequested)[0].sent_by_us
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED


def test_cookie_from_two_periods_ago_is_refused() -> None:
    from ipsecdiag.engine.cookies import cookie_valid, make_cookie

    s = SecretBytes(b"x" * 32)
    c = make_cookie(s, 10.0, 60.0, b"n" * 16, b"\x01\x02\x03\x04", b"i" * 8)
    assert cookie_valid(s, 70.0, 60.0, c, b"n" * 16, b"\x01\x02\x03\x04", b"i" * 8)  # previous period
    assert not cookie_valid(s, 130.0, 60.0, c, b"n" * 16, b"\x01\x02\x03\x04", b"i" * 8)
    assert not cookie_valid(s, 10.0, 60.0, c, b"m" * 16, b"\x01\x02\x03\x04", b"i" * 8)


def test_nat_detected_moves_to_4500_with_marker() -> None:
    net = pair(*psk_configs(), nat=Endpoint("203.0.113.9", 40000))
    net.i.initiate(0.0)
    net.run()
    done_i, done_r = of(net.events_i, events.IkeSaInitDone)[0], of(net.events_r, events.IkeSaInitDone)[0]
    assert done_i.nat_local and not done_i.nat_remote and done_i.encap
    assert done_r.nat_remote and not done_r.nat_local
    auth = [w for w in net.log if w.d.payload[:4] == b"\0\0\0\0"]
    assert auth and all(w.d.src.port == 4500 or w.d.dst.port == 4500 for w in auth)
    assert net.i.state is State.ESTABLISHED
    assert of(net.events_i, events.ChildSaUp)[0].encap
    assert net.r.remote == Endpoint("203.0.113.9", 40001)  # followed the NAT mapping of 4500


def test_forced_encapsulation_fakes_the_source_hash() -> None:
    ci, cr = psk_configs(i_kw={"force_encap": True})
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    assert of(net.events_r, events.IkeSaInitDone)[0].nat_remote  # the responder believes we are NATed
    assert of(net.events_i, events.ChildSaUp)[0].encap and of(net.events_r, events.ChildSaUp)[0].encap
    assert net.log[2].d.dst.port == 4500


def test_redirect_is_followed_once_to_the_new_gateway() -> None:
    new_gw = Endpoint("198.51.100.77", 500)
    ci, cr = psk_configs(r_kw={"redirect_to": new_gw})
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run(max_steps=3)
    red = of(net.events_i, events.Redirected)
    assert red and red[0].followed and red[0].new_remote == new_gw
    again = [w for w in net.log if w.to_responder and w.d.dst == new_gw]
    assert again and again[0].d.payload[:8] != net.log[0].d.payload[:8]  # a new SPIi
    assert net.i.state is State.INIT_SENT
    assert of(net.events_r, events.IkeSaDeleted)  # the old gateway keeps nothing


def test_redirect_limit() -> None:
    ci, cr = psk_configs(i_kw={"max_redirects": 0}, r_kw={"redirect_to": Endpoint("198.51.100.77", 500)})
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    assert not of(net.events_i, events.Redirected)[0].followed
    assert net.i.state is State.CLOSED


def test_fragmentation_supported_is_announced_and_recorded() -> None:
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.run()
    assert of(net.events_i, events.IkeSaInitDone)[0].fragmentation
    assert of(net.events_i, events.IkeSaInitDone)[0].peer_signature_hashes == (2, 3, 4)


def test_responder_without_nat_t_support_sends_no_natd() -> None:
    # Our own defaults always announce NAT-D; here we only check the plain case keeps port 500.
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.run()
    assert all(w.d.dst.port == 500 and w.d.src.port == 500 for w in net.log)
    assert not net.i.encap and not of(net.events_i, events.ChildSaUp)[0].encap


def test_unsupported_responder_group_config_raises_cleanly() -> None:
    ci, cr = psk_configs()
    ci = replace(ci, ike_proposals=())
    net = pair(ci, cr)
    with pytest.raises(ValueError):
        net.i.initiate(0.0)


def test_ipv6_endpoints_selectors_and_virtual_ip() -> None:
    from engine_net import Net

    from ipsecdiag.crypto.rng import DeterministicRandom
    from ipsecdiag.engine import IkeSa, Role, selector_for

    ci, cr = psk_configs(
        i_kw={"request_virtual_ip": True},
        i_child={"local_ts": (), "remote_ts": (selector_for("2001:db8:2::/48"),)},
        r_kw={"pool": "2001:db8:99::/120"},
        r_child={"local_ts": (selector_for("2001:db8:2::/48"),), "remote_ts": (selector_for("2001:db8:99::/120"),)},
    )
    i_ep, r_ep = Endpoint("2001:db8::2", 500), Endpoint("2001:db8:1::2", 500)
    i = IkeSa(ci, role=Role.INITIATOR, rng=DeterministicRandom("6i"), now=0.0, local=i_ep, remote=r_ep)
    r = IkeSa(cr, role=Role.RESPONDER, rng=DeterministicRandom("6r"), now=0.0, local=r_ep, remote=i_ep)
    net = Net(i, r)
    i.initiate(0.0)
    net.run()
    assert i.state is State.ESTABLISHED
    up = of(net.events_i, events.ChildSaUp)[0]
    assert up.virtual_ips == ("2001:db8:99::1",)
    assert [t.display() for t in up.ts_i] == ["2001:db8:99::1/128"]
    assert not of(net.events_i, events.IkeSaInitDone)[0].encap  # NAT-D over IPv6 matched


@pytest.mark.parametrize(
    ("families", "pool", "want"),
    [((4, 6), "10.3.0.0/28", "10.3.0.1"), ((6,), "2001:db8:99::/120", "2001:db8:99::1")],
)
def test_virtual_ip_family_is_configurable(families: tuple[int, ...], pool: str, want: str) -> None:
    # IPv4 outside; the CP request asks for the configured families, not the outer one.
    from ipsecdiag.engine import selector_for
    from ipsecdiag.engine.auth_exchange import _virtual_ip_request
    from ipsecdiag.wire.ikev2_payloads import CpPayload
    from ipsecdiag.wire.registry import CfgAttr

    ci, cr = psk_configs(
        i_kw={"request_virtual_ip": True, "virtual_ip_families": families},
        i_child={"local_ts": ()},
        r_kw={"pool": pool},
        r_child={"remote_ts": (selector_for(pool),)},
    )
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    cp = _virtual_ip_request(net.i)
    attrs = {4: CfgAttr.INTERNAL_IP4_ADDRESS, 6: CfgAttr.INTERNAL_IP6_ADDRESS}
    assert isinstance(cp, CpPayload) and [a.type for a in cp.attributes] == [attrs[f] for f in families]
    up = of(net.events_i, events.ChildSaUp)[0]
    assert up.virtual_ips == (want,)
    assert [t.display() for t in up.ts_i] == [f"{want}/{128 if ':' in want else 32}"]


def test_virtual_ip_families_are_validated() -> None:
    with pytest.raises(ValueError, match="4 and/or 6"):
        psk_configs(i_kw={"virtual_ip_families": (5,)})

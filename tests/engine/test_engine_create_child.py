"""CREATE_CHILD_SA: new CHILD SA, CHILD and IKE SA rekey, with and without PFS, collisions
(RFC 7296 §1.3, §2.8.1, §2.17, §2.18)."""

from __future__ import annotations

from engine_net import of, pair, psk_configs

from ipsecdiag.engine import Role, State, events
from ipsecdiag.wire.registry import KeGroup


def _up(esp: str = "aes128gcm16", r_esp: str | None = None, **kw):
    net = pair(*psk_configs(esp=esp, r_esp=r_esp, **kw))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    return net


def _keys_match(a, b) -> None:
    assert a.spi_in == b.spi_out and a.spi_out == b.spi_in
    assert a.keys_in.encr_key == b.keys_out.encr_key and a.keys_out.encr_key == b.keys_in.encr_key


def test_new_child_sa_without_pfs_from_either_side() -> None:
    net = _up()
    net.i.create_child(net.now)
    net.run()
    assert len(net.i.child_sas) == len(net.r.child_sas) == 2
    _keys_match(of(net.events_i, events.ChildSaUp)[-1], of(net.events_r, events.ChildSaUp)[-1])
    net.r.create_child(net.now)  # the original responder initiates this one
    net.run()
    assert len(net.i.child_sas) == 3
    _keys_match(of(net.events_i, events.ChildSaUp)[-1], of(net.events_r, events.ChildSaUp)[-1])


def test_new_child_sa_with_pfs_and_ke_retry() -> None:
    net = _up(esp="aes128gcm16-ecp256-modp2048", r_esp="aes128gcm16-modp2048")
    net.i.create_child(net.now)
    net.run()
    assert of(net.events_i, events.KeRetry)[-1] == events.KeRetry(KeGroup.MODP_2048, KeGroup.ECP_256)
    assert len(net.i.child_sas) == 2
    _keys_match(of(net.events_i, events.ChildSaUp)[-1], of(net.events_r, events.ChildSaUp)[-1])


def test_child_rekey_replaces_and_deletes_the_old_sa() -> None:
    net = _up(esp="aes256gcm16-modp2048")
    old = next(iter(net.i.child_sas))
    net.i.rekey_child(old, net.now)
    net.run()
    assert old not in net.i.child_sas and len(net.i.child_sas) == 1 and len(net.r.child_sas) == 1
    rk = of(net.events_i, events.ChildSaRekeyed)[0]
    assert rk.old_spi_in == old and rk.new_spi_in in net.i.child_sas
    up = of(net.events_i, events.ChildSaUp)[-1]
    assert up.rekey_of == old
    _keys_match(up, of(net.events_r, events.ChildSaUp)[-1])
    assert [t.display() for t in up.ts_i] == ["10.1.0.0/16"]


def test_rekey_collision_lowest_nonce_rule() -> None:
    net = _up()
    old_i = next(iter(net.i.child_sas))
    old_r = next(iter(net.r.child_sas))
    net.i.rekey_child(old_i, net.now)
    net.r.rekey_child(old_r, net.now)  # both requests cross on the wire
    net.run()
    # Two rekeys completed, one redundant SA and the old one deleted: one pair remains.
    assert len(net.i.child_sas) == 1 and len(net.r.child_sas) == 1
    (ci,) = net.i.child_sas.values()
    (cr,) = net.r.child_sas.values()
    assert ci.spi_in == cr.spi_out and ci.spi_out == cr.spi_in
    assert old_i not in net.i.child_sas
    assert len(of(net.events_i, events.ChildSaRekeyed)) == 2  # both exchanges completed
    # one redundant SA deleted by its creator, the old one by the winner (§2.8.1)
    assert len(of(net.events_i, events.ChildSaDeleted)) == 2 == len(of(net.events_r, events.ChildSaDeleted))


def test_ike_sa_rekey_new_keys_and_old_sa_deleted() -> None:
    net = _up()
    old_keys = net.i.keys
    net.i.rekey_ike(net.now)
    net.run()
    rk_i, rk_r = of(net.events_i, events.IkeSaRekeyed)[0], of(net.events_r, events.IkeSaRekeyed)[0]
    assert rk_i.keys == rk_r.keys and rk_i.keys.spi_i != old_keys.spi_i
    assert net.i.spi_i == rk_i.keys.spi_i and net.r.spi_r == rk_r.keys.spi_r
    assert all(r.state is State.CLOSED for r in net.i._retired + net.r._retired)  # old SA deleted
    # The child SA survives and the new IKE SA works (liveness over it).
    assert len(net.i.child_sas) == 1
    net.i.send_liveness(net.now)
    net.run()
    assert of(net.events_r, events.InformationalReceived)
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED


def test_ike_rekey_by_the_responder_swaps_roles() -> None:
    net = _up()
    net.r.rekey_ike(net.now)
    net.run()
    assert net.r.role is Role.INITIATOR and net.i.role is Role.RESPONDER
    assert net.i.keys == net.r.keys
    net.i.delete(net.now)
    net.run()
    assert net.i.state is State.CLOSED and net.r.state is State.CLOSED


def test_after_ike_rekey_the_analyzer_decrypts_with_the_new_keys_only() -> None:
    import pytest

    from ipsecdiag.crypto.errors import CryptoError
    from ipsecdiag.crypto.sk import decrypt_sk
    from ipsecdiag.wire.ikev2 import parse_message

    net = _up()
    old = net.i.keys
    net.i.rekey_ike(net.now)
    net.run()
    mark = len(net.log)
    net.i.send_liveness(net.now)
    net.run()
    w = net.log[mark]
    msg = parse_message(w.d.payload)
    assert msg.header.spi_i == net.i.keys.spi_i
    off = msg.encrypted_data_offset - 4
    assert decrypt_sk(net.i.keys, w.d.payload, off, from_initiator=True) == b""  # empty INFORMATIONAL
    with pytest.raises(CryptoError):
        decrypt_sk(old, w.d.payload, off, from_initiator=True)


def test_rekey_of_unknown_child_gets_child_sa_not_found() -> None:
    net = _up()
    old = next(iter(net.i.child_sas))
    net.r.child_sas.clear()  # the responder forgot it
    net.i.rekey_child(old, net.now)
    net.run()
    err = of(net.events_i, events.ProtocolError)[-1]
    assert (err.notify_name, err.received, err.fatal) == ("CHILD_SA_NOT_FOUND", True, False)
    assert net.i.state is State.ESTABLISHED


def test_rekeys_on_their_own_after_the_configured_times() -> None:
    from dataclasses import replace

    ci, cr = psk_configs()
    ci = replace(ci, rekey_time=3000.0, child=replace(ci.child, rekey_time=1000.0))
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run(max_time=3500.0)
    # CHILD rekeys at ~900-1000 s intervals, the IKE SA after ~2700-3000 s: all on timers.
    assert len(of(net.events_i, events.ChildSaRekeyed)) >= 3
    assert len(of(net.events_i, events.IkeSaRekeyed)) == 1
    assert len(net.i.child_sas) == len(net.r.child_sas) == 1
    assert net.i.keys == net.r.keys and net.i.state is State.ESTABLISHED


def _simultaneous_ike_rekey(seed: str, **net_kw):  # type: ignore[no-untyped-def]
    net = pair(*psk_configs(esp="aes128gcm16"), seed=seed, **net_kw)
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    old = (net.i.spi_i, net.i.spi_r)
    net.i.rekey_ike(net.now)
    net.r.rekey_ike(net.now)  # both requests cross on the wire (§2.8.2)
    net.run()
    return net, old


def test_simultaneous_ike_rekey_lowest_nonce_rule() -> None:
    # RFC 7296 §2.8.2: both exchanges complete; the new SA created with the lowest of the four
    # nonces is deleted by its creator, the other survives and its creator deletes the old SA.
    winners = set()
    for seed in ("a", "b", "c", "d", "e", "f"):
        net, old = _simultaneous_ike_rekey(seed)
        assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
        assert net.i.keys == net.r.keys and (net.i.spi_i, net.i.spi_r) != old
        assert net.i.role is not net.r.role
        winners.add(net.i.role)
        # no refusal any more, one rekey reported per side, every side SA deleted
        assert not [e for e in net.events_i + net.events_r if isinstance(e, events.ProtocolError)]
        assert len(of(net.events_i, events.IkeSaRekeyed)) == 1 == len(of(net.events_r, events.IkeSaRekeyed))
        assert all(r.state is State.CLOSED for r in net.i._retired + net.r._retired)
        assert len(net.i._retired) == 2 == len(net.r._retired)  # the old SA and the redundant one
        assert not net.i.drops and not net.r.drops
        (ci,), (cr,) = net.i.child_sas.values(), net.r.child_sas.values()
        assert ci.spi_in == cr.spi_out and ci.spi_out == cr.spi_in  # CHILD SA moved over
        net.i.send_liveness(net.now)
        net.run()
        assert of(net.events_r, events.InformationalReceived) and net.r.state is State.ESTABLISHED
    assert winners == {Role.INITIATOR, Role.RESPONDER}  # both outcomes of the nonce rule seen


def test_simultaneous_ike_rekey_survives_reordering_and_duplicates() -> None:
    def dup(w, i):  # type: ignore[no-untyped-def]
        return [w.d.payload, w.d.payload]

    for seed in ("a", "b"):
        net, _ = _simultaneous_ike_rekey(seed, reorder=True, mangle=dup)
        assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
        assert net.i.keys == net.r.keys
        assert all(r.state is State.CLOSED for r in net.i._retired + net.r._retired)
        net.i.delete(net.now)
        net.run()
        assert net.i.state is State.CLOSED and net.r.state is State.CLOSED

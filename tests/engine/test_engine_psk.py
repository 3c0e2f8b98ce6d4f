"""Two engines, PSK: IKE_SA_INIT + IKE_AUTH + CHILD SA, then DELETE (RFC 7296 §1.2, §1.4)."""

from __future__ import annotations

from engine_net import of, pair, psk_configs

from ipsecdiag.engine import State, events


def test_psk_handshake_brings_up_child_sa_both_sides() -> None:
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    up_i, up_r = of(net.events_i, events.ChildSaUp), of(net.events_r, events.ChildSaUp)
    assert len(up_i) == len(up_r) == 1
    # Each side's inbound SA is the other's outbound, with the same keys.
    assert up_i[0].spi_in == up_r[0].spi_out and up_i[0].spi_out == up_r[0].spi_in
    assert up_i[0].keys_in.encr_key == up_r[0].keys_out.encr_key
    assert up_i[0].keys_out.encr_key == up_r[0].keys_in.encr_key
    assert [t.display() for t in up_i[0].ts_i] == ["10.1.0.0/16"]
    assert [t.display() for t in up_i[0].ts_r] == ["10.2.0.0/16"]
    assert net.i.keys == net.r.keys
    auth = of(net.events_i, events.Authenticated)[0]
    assert auth.peer_id_text == "gw.example.org"
    assert of(net.events_r, events.Authenticated)[0].peer_id_text == "client@example.org"


def test_derived_keys_decrypt_the_messages_with_the_analyzer_crypto() -> None:
    from ipsecdiag.crypto.sk import decrypt_sk
    from ipsecdiag.wire.ikev2 import parse_message, parse_payloads

    net = pair(*psk_configs("aes128-sha256-modp2048", "aes128-sha256"))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    auth_msgs = [w for w in net.log if w.d.payload[:4] == b"\0\0\0\0" or w.d.payload[18] == 35]
    assert auth_msgs, "no IKE_AUTH on the wire"
    for w in net.log[2:]:
        data = w.d.payload[4:] if w.d.payload[:4] == b"\0\0\0\0" else w.d.payload
        msg = parse_message(data)
        off = msg.encrypted_data_offset - 4
        plain = decrypt_sk(net.i.keys, data, off, from_initiator=w.to_responder)
        names = [p.payload_type for p in parse_payloads(msg.encrypted.next_payload, plain)]
        assert names  # IDi/IDr, AUTH, SA, TSi, TSr...


def test_delete_child_then_ike_sa() -> None:
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.run()
    spi = next(iter(net.i.child_sas))
    net.i.delete_child(spi, net.now)
    net.i.send_liveness(net.now)  # queued behind the delete (window size 1)
    net.run()
    assert not net.i.child_sas and not net.r.child_sas
    assert of(net.events_r, events.ChildSaDeleted)[0].by_peer
    assert of(net.events_r, events.InformationalReceived)[-1].deletes == 0  # the liveness check
    net.r.delete(net.now)  # the responder may delete too
    net.run()
    assert net.i.state is State.CLOSED and net.r.state is State.CLOSED
    assert of(net.events_i, events.IkeSaDeleted)[0].by_peer
    assert not of(net.events_r, events.IkeSaDeleted)[0].by_peer


def test_child_sa_keys_drive_the_esp_layer_both_ways() -> None:
    from ipsecdiag.esp.sa import EspDecryptor, EspEncryptor, EspStatus

    for esp in ("aes256gcm16", "aes128-sha256-esn", "chacha20poly1305"):
        net = pair(*psk_configs(esp=esp))
        net.i.initiate(0.0)
        net.run()
        up_i = of(net.events_i, events.ChildSaUp)[0]
        up_r = of(net.events_r, events.ChildSaUp)[0]
        for sender, receiver, rng in ((up_i, up_r, net.i.rng), (up_r, up_i, net.r.rng)):
            pkt = EspEncryptor(sender.keys_out, rng.bytes).encrypt(b"\x45" + bytes(39), 4, seq=1)
            assert int.from_bytes(pkt[:4], "big") == receiver.spi_in
            status, nh, payload, _hi = EspDecryptor(receiver.keys_in).decrypt(pkt, 0, len(pkt))
            assert (status, nh, payload) == (EspStatus.OK, 4, b"\x45" + bytes(39)), esp
            # and the wrong direction's keys do not open it
            wrong = EspDecryptor(receiver.keys_out).decrypt(pkt, 0, len(pkt))[0]
            assert wrong != EspStatus.OK

"""MS-CHAPv2 known answers: RFC 1320 (MD4), RFC 2759 §9.2, RFC 3079 §3.5.3."""

from __future__ import annotations

from ipsecdiag.engine import mschapv2 as m

# RFC 2759 §9.2 sample
AUTH_CHAL = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHAL = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
USER = b"User"
PASSWORD = "clientPass"


def test_md4_rfc1320_suite() -> None:
    # RFC 1320 appendix A.5
    assert m.md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert m.md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"
    assert m.md4(b"message digest").hex() == "d9130a8164549fe818874806e1c7014b"
    assert m.md4(b"1234567890" * 8).hex() == "e33b4ddc9c38f2199c3e7b164fcc0536"


def test_rfc2759_sample() -> None:
    assert m.nt_password_hash(PASSWORD).hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    assert m.challenge_hash(PEER_CHAL, AUTH_CHAL, USER).hex().upper() == "D02E4386BCE91226"
    nt = m.nt_response(AUTH_CHAL, PEER_CHAL, USER, PASSWORD)
    assert nt.hex().upper() == "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"
    assert m.authenticator_response(PASSWORD, nt, PEER_CHAL, AUTH_CHAL, USER) == b"S=407A5589115FD0D6209F510FE9C04566932CDA56"


def test_rfc3079_master_key() -> None:
    nt = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
    assert m.master_key(PASSWORD, nt).hex().upper() == "FDECE3717A8C838CB388E527AE3CDD31"
    # RFC 3079 §3.5.3 SendStartKey128 is the server's send key (magic 3); the MSK is the
    # client's send key (magic 2) then that one, as hostapd and strongSwan build it.
    key = m.msk(PASSWORD, nt)
    assert len(key) == 32 and key[16:].hex().upper() == "8B7CDC149B993A1BA118CB153F56DCCB"

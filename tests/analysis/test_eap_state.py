"""IKE SA state and EAP (issue 11, RFC 7296 §2.16, §2.21.2; RFC 3748): recordings of the project's
own engines (an EAP-MSCHAPv2 client against an EAP server) written with the probe's pcapng writer
and key files, analysed with the keys as a user would."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from checks_keyed import analyze
from engine.engine_certs import ca, end_entity
from engine.engine_net import of, pair, psk_configs

from ipsecdiag.engine import CertAuth, EapAuth, Identity, events
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.probe.record import Datagram, SessionRecord

USER = "carol@example.org"


def _record(tmp_path: Path, password: str) -> tuple[Path, Path]:
    ci, cr = psk_configs()
    k, d = end_entity("gw.example.org", "ecdsa")
    ci = replace(
        ci,
        auth=EapAuth(USER, SecretBytes(password.encode())),
        local_id=Identity.parse(USER),
        ca_certs=(ca()[1],),
    )
    cr = replace(cr, auth=CertAuth(k, (d,)), eap_users=((USER, SecretBytes(b"clientPass")),))
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    rec = SessionRecord()
    for n, w in enumerate(net.log):
        src, dst = (w.d.src.host, w.d.src.port), (w.d.dst.host, w.d.dst.port)
        rec.add(Datagram(1_780_000_000 + n * 0.01, src, dst, w.d.payload, w.to_responder))
    rec.add_keys(e.keys for e in of(net.events_i, events.IkeSaInitDone))
    files = rec.write(tmp_path / f"eap-{password}.pcapng")
    assert files.keyfile is not None
    return files.pcapng, files.keyfile


def test_eap_success_is_established(tmp_path: Path) -> None:
    report = analyze(*_record(tmp_path, "clientPass"))
    [sa] = report.ike_sas
    assert sa.state == "established"
    assert not [f for f in report.findings if f.id == "auth-failed"]


def test_eap_failure_is_not_established(tmp_path: Path) -> None:
    """The responder's AUTH came in the first IKE_AUTH round; EAP then failed: not established."""
    report = analyze(*_record(tmp_path, "wrong"))
    [sa] = report.ike_sas
    assert sa.state == "failed"
    assert [f for f in report.findings if f.id == "auth-failed"]


# -- RFC 7296 §2.21.2: the initiator rejects the responder's AUTH after IKE_AUTH --------------


def _psk_session(*, reject_after: bool, delete: bool = False):
    from checks_builders import exchange, ike_sa, msg, notify

    from ipsecdiag.reconstruction.ike_sas import _settle_state
    from ipsecdiag.wire.ikev2 import AuthPayload, DeletePayload, NoncePayload
    from ipsecdiag.wire.ikev2_sa import Proposal, SaPayload, Transform

    sa_p = SaPayload((Proposal(1, 1, b"", (Transform(1, 20, ()),)),))
    auth = AuthPayload(2, b"\x01" * 32)
    init = exchange(
        "IKE_SA_INIT", 0, msg(payloads=[sa_p, NoncePayload(b"n" * 32)], frame=1),
        msg(from_initiator=False, response=True, payloads=[sa_p, NoncePayload(b"m" * 32)], frame=2, ts=0.1),
    )
    ike_auth = exchange(
        "IKE_AUTH", 1, msg(inner=[auth], frame=3, ts=0.2),
        msg(from_initiator=False, response=True, inner=[auth], frame=4, ts=0.3),
    )
    exs = [init, ike_auth]
    if reject_after:
        inner = [notify("AUTHENTICATION_FAILED")] + ([DeletePayload(1, 0, ())] if delete else [])
        exs.append(
            exchange(
                "INFORMATIONAL", 2, msg(inner=inner, frame=5, ts=0.4),
                msg(from_initiator=False, response=True, inner=[], frame=6, ts=0.5),
            )
        )
    sa = ike_sa(*exs, state="incomplete")
    _settle_state(sa)
    return sa


def test_both_auth_accepted_is_established() -> None:
    assert _psk_session(reject_after=False).state == "established"


def test_initiator_rejecting_the_responders_auth_is_failed() -> None:
    assert _psk_session(reject_after=True).state == "failed"
    assert _psk_session(reject_after=True, delete=True).state == "failed"


def test_eap_mschapv2_wrong_password_is_said(tmp_path: Path) -> None:
    """MS-CHAPv2 Failure-Request E=691 is a wrong password for that user, not a certificate issue."""
    report = analyze(*_record(tmp_path, "wrong"))
    [f] = [f for f in report.findings if f.id == "auth-failed"]
    assert f.data["eap_error"] == 691 and f.data["eap_user"] == USER
    assert "wrong password" in f.cause and USER in f.cause
    assert "certificate" in f.cause and "not a certificate" in f.cause  # said as what it is not
    assert any("E=691" in e for e in f.evidence)

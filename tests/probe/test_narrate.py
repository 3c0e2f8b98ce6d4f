"""The probe's narration and findings: what the engine's events become, checked event by event.

Each case feeds real engine event objects to a :class:`Narrator` and checks the words a user
reads (review entries 2, 6, 16, 20, 23, 24 and the flood case): they must say what is known and
no more (RFC 7296 §2.7: NO_PROPOSAL_CHOSEN reveals nothing; §2.23: a NAT-D source mismatch cannot
tell a NAT from forced encapsulation).
"""

from __future__ import annotations

from types import SimpleNamespace

from ipsecdiag.engine import events as ev
from ipsecdiag.engine.config import selector_for
from ipsecdiag.engine.scan import Observations
from ipsecdiag.probe.narrate import Narrator, Step, _id_of, narrowing, nat_fields, nat_text
from ipsecdiag.probe.scan import _nat as scan_nat


def _narrator(**kw: object) -> tuple[Narrator, list[Step]]:
    out: list[Step] = []
    now = [10.0]
    n = Narrator(
        gateway="192.0.2.7", offered_ike="aes128-sha1-modp1024", offered_esp="aes128-sha256", emit=out.append,
        clock=lambda: now[0], frame=lambda: 3, t0=0.0, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return n, out


def _init(nat_local: bool, nat_remote: bool, encap: bool = True) -> ev.IkeSaInitDone:
    return SimpleNamespace(nat_local=nat_local, nat_remote=nat_remote, encap=encap)  # type: ignore[return-value]


def test_nat_step_keeps_the_hedge_for_the_gateways_hash_and_names_our_forcing() -> None:
    both = nat_text(_init(True, True), "the gateway", forced=False)
    assert "NAT found in front of us" in both
    assert "a NAT in front of the gateway, or it forces UDP encapsulation" in both  # never a bare claim
    forced = nat_text(_init(False, True), "the gateway", forced=True)
    assert "we force UDP encapsulation ourselves" in forced
    assert nat_text(_init(False, False, encap=False), "the gateway", forced=False) == "no NAT between us and the gateway"


def test_json_never_asserts_a_nat_the_gateways_source_hash_cannot_show() -> None:
    # review 3 item 8: a gateway forcing UDP encapsulation (kernel-libipsec, encap=yes) sends a
    # source hash that matches nothing, like one behind a NAT (RFC 7296 §2.23): not "nat_remote: true"
    forced_or_nat = nat_fields(_init(False, True))
    assert forced_or_nat == {"nat_local": False, "nat_remote": None, "nat_remote_verdict": "nat-or-forced"}
    assert nat_fields(_init(True, False)) == {"nat_local": True, "nat_remote": False, "nat_remote_verdict": "none"}
    obs = Observations()
    obs.nat_local, obs.nat_remote = False, True
    assert scan_nat(obs) == {"local": False, "remote": None, "remote_verdict": "nat-or-forced"}


def test_narrowing_says_what_the_child_sa_does_not_cover() -> None:
    asked = ((selector_for("0.0.0.0/0"),), (selector_for("10.99.100.0/24"), selector_for("10.99.200.0/24")))
    got = ((selector_for("10.99.10.0/24"),), (selector_for("10.99.100.0/24"),))
    lines = narrowing(asked, got, "the gateway")
    assert len(lines) == 2
    assert "asked 0.0.0.0/0, got 10.99.10.0/24 (expected" in lines[0]
    assert lines[1].endswith("not covered: 10.99.200.0/24")
    assert narrowing(got, got, "the gateway") == []  # nothing narrowed, nothing said


def test_no_proposal_chosen_points_to_scan_and_names_no_proposal_of_its_own() -> None:
    n, steps = _narrator()
    n.on_event(None, ev.ProtocolError(14, "NO_PROPOSAL_CHOSEN", "ours", True, "refused", "IKE_SA_INIT", True))
    n.on_event(None, ev.IkeSaDeleted("responder refused IKE_SA_INIT with NO_PROPOSAL_CHOSEN", True))
    (f,) = n.findings
    assert f.id == "ike-no-proposal-chosen"
    assert "ipsecdiag probe scan 192.0.2.7" in f.remediation
    assert "proposals =" not in f.remediation  # the catalogue's example is not the gateway's set
    assert "we offered IKE proposals: aes128-sha1-modp1024" in f.evidence
    assert steps[-1].text.startswith("no IKE SA created")  # nothing existed, nothing was deleted


def test_auth_failed_from_the_gateway_names_ids_method_and_the_peer_config_case() -> None:
    n, _ = _narrator(sent_ids=("client.lab (FQDN)", "wrong.lab (FQDN)", "SHARED_KEY_MIC (PSK)"))
    n.on_event(None, ev.ProtocolError(24, "AUTHENTICATION_FAILED", "ours", True, "", "IKE_AUTH", True))
    (f,) = n.findings
    assert "we sent IDi client.lab (FQDN), IDr wrong.lab (FQDN), AUTH SHARED_KEY_MIC (PSK)" in f.evidence
    assert "the responder) rejected our authentication" in f.explanation
    assert "pre-shared keys differ" in f.cause and "no matching peer config" in f.cause
    assert "wrong.lab (FQDN) (--remote-id)" in f.remediation and "certificate" not in f.remediation.lower()


def test_internal_address_failure_has_its_own_cause_and_fix() -> None:
    n, _ = _narrator()
    n.on_event(None, ev.ProtocolError(36, "INTERNAL_ADDRESS_FAILURE", "ours", True, "", "IKE_AUTH", True))
    (f,) = n.findings
    assert "pool" in f.cause and "--vip" in f.remediation
    assert "notify-specific advice" not in f.remediation


def test_transport_mode_refusal_mentions_the_mode() -> None:
    n, _ = _narrator(mode="transport")
    n.on_event(None, ev.ProtocolError(14, "NO_PROPOSAL_CHOSEN", "ours", True, "", "IKE_AUTH", True))
    (f,) = n.findings
    assert f.id == "child-no-proposal-chosen" and "transport mode" in f.explanation


def test_a_message_we_refuse_for_its_form_is_malformed_never_error_notify() -> None:
    for name in ("INVALID_MAJOR_VERSION", "INVALID_IKE_SPI", "INVALID_SYNTAX", "INVALID_MESSAGE_ID"):
        assert _id_of(name, "EXCHANGE_5", received=False) == "malformed-packet"
    assert _id_of("INTERNAL_ADDRESS_FAILURE", "IKE_AUTH", received=True) == "error-notify"


def test_unanswered_comes_before_a_stray_garbage_note() -> None:
    n, _ = _narrator()
    n.on_event(None, ev.ProtocolError(5, "INVALID_MAJOR_VERSION", "peer", False, "garbage", "EXCHANGE_5", False))
    n.unanswered("IKE_SA_INIT", 0, 3, None, "after the whole retransmission schedule")
    assert [f.id for f in n.findings] == ["ike-unanswered", "malformed-packet"]


def test_answers_are_timed_when_they_arrived() -> None:
    rx = [4.25]
    n, steps = _narrator(rx_time=lambda: rx[0])
    n.on_event(None, ev.Received("IKE_SA_INIT", 0, True, (), ()))
    assert steps[-1].t == 4.25  # not the clock after our key derivation (10.0)


def test_a_normal_delete_is_said_once() -> None:
    n, steps = _narrator()
    n.init_done = SimpleNamespace()  # type: ignore[assignment]
    n.child = SimpleNamespace()  # type: ignore[assignment]
    n.on_event(None, ev.IkeSaDeleted("IKE SA deleted", False))
    n.on_event(None, ev.IkeSaDeleted("the peer deleted the IKE SA", True))
    assert [s.text for s in steps[-2:]] == ["IKE SA deleted", "IKE SA deleted by the gateway"]

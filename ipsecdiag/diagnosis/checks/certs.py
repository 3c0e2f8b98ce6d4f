"""Certificates sent in CERT payloads: validity at capture time (with the clock skew it implies),
the IKE identity vs subject/subjectAltName, the chain vs the CAs the verifier requested
(CERTREQ, optionally named with ``--ca``), and key usages some peers insist on.

Each certificate problem is judged against what the verifying peer did: a rejection
(AUTHENTICATION_FAILED from the verifier) makes it the root cause of ``auth-failed``; a
certificate the verifier accepted anyway is reported at lower severity.

The X.509 stack (``crypto.x509`` and cryptography's x509) is imported inside the functions that
use it: it is 45 ms of start-up, and a capture without CERT payloads never reaches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ...reconstruction.model import (
    Finding,
    IkeSaRecord,
    MessageRecord,
    Severity,
    raw_seconds,
    utc_datetime,
)
from ...wire import ikev2 as v2
from ...wire.jsontypes import Json
from ...wire.registry import IdType, name_of
from ..base import Check, CheckContext
from ..certificates import SentChain, sent_chains
from ..common import AUTH_NOTIFIES_V1, AUTH_NOTIFIES_V2, payloads_of, peer, role

if TYPE_CHECKING:
    from cryptography import x509


def verdict(sa: IkeSaRecord, verifier: str, after: float) -> tuple[str, MessageRecord | None]:
    """Did the verifying side reject ("rejected", with the message), accept, or is it unknown?"""
    names = AUTH_NOTIFIES_V2 if sa.version == 2 else AUTH_NOTIFIES_V1
    for ex in sa.exchanges:
        for m in ex.all_messages():
            if role(m) == verifier and m.ts >= after and names & set(m.notifies):
                return "rejected", m
    if sa.state in ("established", "deleted"):
        return "accepted", None
    return "unknown", None


def _utc(ts: float) -> str:
    dt = utc_datetime(ts)
    return raw_seconds(ts) if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def cert_line(i: int, c: x509.Certificate) -> str:
    from ...crypto import x509 as cx  # lazily: see the module docstring

    nb, na = cx.validity(c)
    return (
        f"[{i}] {cx.dn_text(c.subject)} (issuer {cx.dn_text(c.issuer)}), valid {_utc(nb)} to {_utc(na)}, "
        f"serial {c.serial_number:x}"
    )


def cert_data(c: x509.Certificate) -> Json:
    from ...crypto import x509 as cx  # lazily: see the module docstring

    nb, na = cx.validity(c)
    return {
        "subject": cx.dn_text(c.subject),
        "issuer": cx.dn_text(c.issuer),
        "serial": f"{c.serial_number:x}",
        "not_before": _utc(nb),
        "not_after": _utc(na),
        "subject_alt_names": {k: v for k, v in cx.subject_alt_names(c).items() if v},
    }


def load_ca_files(paths: Iterable[str | Path]) -> list[tuple[str, x509.Certificate]]:
    """(file name, certificate) for every certificate in the ``--ca`` files."""
    out = []
    for p in paths:
        from ...crypto import x509 as cx  # lazily: see the module docstring

        path = Path(p)
        for c in cx.load_certificates(path.read_bytes()):
            out.append((path.name, c))
    return out


class CertCheck(Check):
    name = "certs"
    finding_ids = (
        "cert-not-yet-valid",
        "cert-expired",
        "cert-id-mismatch",
        "cert-untrusted",
        "cert-key-usage",
    )
    severity_overrides = {
        "cert-not-yet-valid": "info (clock skew) when the verifier accepted the certificate: the explanation "
        "says it was accepted anyway",
        "cert-expired": "warning when the verifier accepted the certificate: the explanation says it was "
        "accepted anyway",
        "cert-id-mismatch": "warning when the verifier accepted the certificate: the explanation says it was "
        "accepted anyway",
        "cert-untrusted": "warning when the capture does not show the verifier's verdict: the explanation "
        "says so",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        cas = load_ca_files(ctx.options.ca_files)
        for sa in ctx.report.ike_sas:
            for chain in sent_chains(sa):
                if not chain.certs:
                    continue
                outcome, reject_msg = verdict(sa, chain.verifier, chain.m.ts)
                yield from self._validity(chain, outcome, reject_msg)
                f = self._identity(chain, outcome, reject_msg)
                if f is not None:
                    yield f
                f = self._trust(chain, outcome, reject_msg, cas)
                if f is not None:
                    yield f
                f = self._usage(chain)
                if f is not None:
                    yield f

    # -- shared ------------------------------------------------------------------------------
    def _base(self, chain: SentChain) -> tuple[list[int], list[str]]:
        frames = list(chain.m.frames)
        ev = [
            f"the {chain.sender} ({peer(chain.m)}) sent {len(chain.certs)} certificate(s) in "
            f"{chain.ex.type}, frame {chain.m.first_frame}, captured {_utc(chain.m.ts)}"
        ]
        ev += [cert_line(i, c) for i, c in enumerate(chain.certs, 1)]
        return frames, ev

    @staticmethod
    def _outcome_text(chain: SentChain, outcome: str, reject_msg: MessageRecord | None) -> str:
        if outcome == "rejected" and reject_msg is not None:
            return (
                f"The {chain.verifier} rejected it: AUTHENTICATION_FAILED in frame {reject_msg.first_frame}."
            )
        if outcome == "accepted":
            return f"The {chain.verifier} accepted it anyway (the IKE SA was established)."
        if outcome == "unknown":
            return f"The capture does not show whether the {chain.verifier} accepted it."
        return ""

    def _severity(self, outcome: str, accepted: Severity) -> Severity | None:
        return accepted if outcome == "accepted" else None

    # -- validity ----------------------------------------------------------------------------
    def _validity(
        self, chain: SentChain, outcome: str, reject_msg: MessageRecord | None
    ) -> Iterable[Finding]:
        from ...crypto import x509 as cx  # lazily: see the module docstring

        at = chain.m.ts
        problems = [(c, cx.validity_problem(c, at)) for c in chain.certs]
        for kind, fid in (("not-yet-valid", "cert-not-yet-valid"), ("expired", "cert-expired")):
            bad = [(c, p) for c, p in problems if p is not None and p.kind == kind]
            if not bad:
                continue
            frames, ev = self._base(chain)
            if reject_msg is not None:
                frames += reject_msg.frames
            c, p = bad[0]
            nb, na = cx.validity(c)
            who_ = f"the {chain.sender}'s certificate {cx.dn_text(c.subject)}"
            if kind == "not-yet-valid":
                expl = (
                    f"{who_[0].upper()}{who_[1:]} is valid only from {_utc(nb)}, {cx.duration_text(p.seconds)} "
                    f"after this message was captured ({_utc(at)}). The clock of the host that issued it runs "
                    f"ahead, or the {chain.verifier}'s clock is behind: estimated skew "
                    f"{cx.duration_text(p.seconds)} or more (relative to the capturing host's clock)."
                )
                rem = (
                    f"Fix the clocks (NTP) on the {chain.verifier} and on the CA host, then re-issue the "
                    "certificate if its notBefore is wrong; strongSwan's `pki --issue --not-before` can "
                    "backdate it."
                )
                accepted_sev = Severity.INFO
                data = {"skew_seconds": round(p.seconds, 3)}
            else:
                expl = (
                    f"{who_[0].upper()}{who_[1:]} expired at {_utc(na)}, {cx.duration_text(p.seconds)} before "
                    f"this message was captured ({_utc(at)})."
                )
                rem = f"Renew the {chain.sender}'s certificate and load it (`swanctl --load-creds`)."
                accepted_sev = Severity.WARNING
                data = {"expired_seconds": round(p.seconds, 3)}
            if len(bad) > 1:
                expl += f" {len(bad)} certificates of the chain are affected."
            extra = self._outcome_text(chain, outcome, reject_msg)
            if extra:
                expl += " " + extra
            if outcome == "accepted":
                expl += " The verifier does not check validity, or its clock differs from the capture's."
            data |= {
                "sender": chain.sender,
                "verifier": chain.verifier,
                "verdict": outcome,
                "certificate": cert_data(c),
                "chain": [cert_data(x) for x in chain.certs],
            }
            yield self.finding(
                fid,
                frames=frames,
                evidence=ev,
                ike_sa=chain.sa.key,
                explanation=expl,
                remediation=rem,
                severity=self._severity(outcome, accepted_sev),
                data=data,
                explains=("auth-failed",) if outcome == "rejected" else (),
            )

    # -- identity ----------------------------------------------------------------------------
    def _identity(self, chain: SentChain, outcome: str, reject_msg: MessageRecord | None) -> Finding | None:
        from ...crypto import x509 as cx  # lazily: see the module docstring

        if chain.id_type is None:
            return None
        ee = chain.certs[0]  # RFC 7296 §3.6: the first certificate holds the AUTH key
        match = cx.match_identity(chain.id_type, chain.id_data, ee)
        if match.matched is not False:
            return None
        frames, ev = self._base(chain)
        if reject_msg is not None:
            frames += reject_msg.frames
        ev.append(f"identity sent: {chain.id_text} ({name_of(IdType, chain.id_type)})")
        ev.append(f"{match.against} of {cx.dn_text(ee.subject)}: {', '.join(match.candidates) or 'none'}")
        if match.note:
            ev.append(match.note)
        expl = (
            f"The {chain.sender} identified itself as {chain.id_text}, but its certificate "
            f"{cx.dn_text(ee.subject)} does not contain it in {match.against} (RFC 4945 §3.1)."
        )
        extra = self._outcome_text(chain, outcome, reject_msg)
        if extra:
            expl += " " + extra
        value = next(iter(match.candidates), None)
        rem = (
            f"Configure the {chain.sender}'s identity to a value in the certificate"
            + (f" (strongSwan `local {{ id = {value} }}`, libreswan `leftid=`)" if value else "")
            + f", or re-issue the certificate with {chain.id_text.split(' ', 1)[1]} as subjectAltName "
            "(`pki --issue --san ...`)."
        )
        return self.finding(
            "cert-id-mismatch",
            frames=frames,
            evidence=ev,
            ike_sa=chain.sa.key,
            explanation=expl,
            remediation=rem,
            severity=self._severity(outcome, Severity.WARNING),
            data={
                "sender": chain.sender,
                "identity": chain.id_text,
                "identity_type": name_of(IdType, chain.id_type),
                "compared_with": match.against,
                "candidates": list(match.candidates),
                "verdict": outcome,
            },
            explains=("auth-failed",) if outcome == "rejected" else (),
        )

    # -- trust (CERTREQ) ---------------------------------------------------------------------
    def _trust(
        self,
        chain: SentChain,
        outcome: str,
        reject_msg: MessageRecord | None,
        cas: list[tuple[str, x509.Certificate]],
    ) -> Finding | None:
        from ...crypto import x509 as cx  # lazily: see the module docstring

        requested = _certreq_hashes(chain.sa, chain.verifier)
        if not requested:
            return None
        known = cas + [("sent chain", c) for c in chain.certs if cx.is_ca(c)]
        by_hash = {cx.spki_sha1(c): (src, c) for src, c in known}
        names = [
            f"{cx.dn_text(by_hash[h][1].subject)} (from {by_hash[h][0]})"
            if h in by_hash
            else f"unknown CA {h.hex()}"
            for h in requested
        ]
        anchor = _anchor(chain.certs, [c for _, c in known])
        if anchor is None:
            return None  # the issuing CA is not known here: nothing to compare the hashes with
        path = [c for c in chain.certs if cx.is_ca(c)] + [anchor]
        if any(cx.spki_sha1(c) in requested for c in path) or outcome == "accepted":
            return None
        frames, ev = self._base(chain)
        if reject_msg is not None:
            frames += reject_msg.frames
        ev.append(f"the {chain.verifier} requested certificates from: {'; '.join(names)}")
        ev.append(f"the chain ends at {cx.dn_text(anchor.subject)}, key hash {cx.spki_sha1(anchor).hex()}")
        expl = (
            f"The {chain.sender}'s certificate chains to {cx.dn_text(anchor.subject)}, which is not among the CAs "
            f"the {chain.verifier} asked for in CERTREQ."
        )
        extra = self._outcome_text(chain, outcome, reject_msg)
        if extra:
            expl += " " + extra
        known_req = [cx.dn_text(by_hash[h][1].subject) for h in requested if h in by_hash]
        rem = (
            f"Make the {chain.verifier} trust {cx.dn_text(anchor.subject)} (strongSwan: put it in "
            "swanctl/x509ca/ and `swanctl --load-creds`; libreswan: import it into the NSS database)"
            + (
                f", or issue the {chain.sender}'s certificate from {' or '.join(known_req)}"
                if known_req
                else ""
            )
            + "; send intermediate CA certificates along if the chain needs them."
        )
        return self.finding(
            "cert-untrusted",
            frames=frames,
            evidence=ev,
            ike_sa=chain.sa.key,
            explanation=expl,
            remediation=rem,
            severity=Severity.WARNING if outcome == "unknown" else None,
            data={
                "requested": [h.hex() for h in requested],
                "anchor": cx.dn_text(anchor.subject),
                "verdict": outcome,
            },
            explains=("auth-failed",) if outcome == "rejected" else (),
        )

    # -- usages ------------------------------------------------------------------------------
    def _usage(self, chain: SentChain) -> Finding | None:
        from ...crypto import x509 as cx  # lazily: see the module docstring

        ee = chain.certs[0]
        notes = []
        if cx.key_usage_allows_signing(ee) is False:
            notes.append("keyUsage lacks digitalSignature, which AUTH signatures need")
        eku = cx.extended_key_usages(ee)
        if chain.sender == "responder" and eku is not None:
            wanted = {"serverAuth", "ikeIntermediate", "anyExtendedKeyUsage"}
            if not wanted & set(eku):
                notes.append(
                    f"extendedKeyUsage is {', '.join(eku) or 'empty'}: Windows and Apple clients require "
                    "serverAuth (or ikeIntermediate) on a gateway certificate"
                )
        if not notes:
            return None
        frames, ev = self._base(chain)
        ev += notes
        return self.finding(
            "cert-key-usage",
            frames=frames,
            evidence=ev,
            ike_sa=chain.sa.key,
            explanation=f"The {chain.sender}'s certificate {cx.dn_text(ee.subject)}: "
            + "; ".join(notes)
            + ".",
            data={"sender": chain.sender, "extended_key_usage": eku},
        )


def _certreq_hashes(sa: IkeSaRecord, verifier: str) -> list[bytes]:
    out: list[bytes] = []
    for ex in sa.exchanges:
        for m in ex.all_messages():
            if role(m) != verifier:
                continue
            for p in payloads_of(m, v2.CertReqPayload):
                if p.encoding == 4:
                    out += list(p.ca_hashes() or ())
    return list(dict.fromkeys(out))


def _anchor(chain: list[x509.Certificate], cas: list[x509.Certificate]) -> x509.Certificate | None:
    """The CA at the top of the chain: the last sent certificate's issuer, when we have it."""
    from ...crypto import x509 as cx  # lazily: see the module docstring

    top = chain[-1]
    if cx.is_ca(top) and top.issuer == top.subject:
        return top
    for ca in cas:
        if ca.subject == top.issuer and cx.issued_by(top, ca):
            return ca
    return None

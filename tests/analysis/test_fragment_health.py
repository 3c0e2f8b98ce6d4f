"""Incomplete IP fragments: capture-health gives the cause that applies, never the clock or a
damaged file (review 2, item 20). Next to an ike-fragment-loss error it says which datagrams
are that loss and which only met the capture's end (the 2 s grace both checks use)."""

from __future__ import annotations

from pathlib import Path

from corpus import REPO_ROOT
from regress.floods import fragment_flood

from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Finding, Report


def _fragments(r: Report) -> Finding:
    (f,) = [f for f in r.findings if f.id == "capture-health" and f.data.get("kind") == "incomplete-fragments"]
    return f


def test_fragments_lost_next_to_ike_fragment_loss_point_to_it() -> None:
    r = analyze_capture(REPO_ROOT / "sample_pcaps" / "synth" / "ike-fragments-lost.pcap")
    (loss,) = [f for f in r.findings if f.id == "ike-fragment-loss"]
    f = _fragments(r)
    assert "clock" not in f.cause and "damaged file" not in f.cause and "clock" not in f.remediation
    assert "Fragments lost on the path" in f.cause and "ike-fragment-loss" in f.remediation
    (why,) = [e for e in f.evidence if e.startswith("of them:")]
    assert "2 carried IKE between the peers of an IKE SA" in why and "ike-fragment-loss" in why
    assert "1 ended within 2 s of the capture's end" in why  # the one ike-fragment-loss leaves out
    assert f.frames == loss.frames == [3, 4]


def test_a_fragment_flood_is_not_blamed_on_the_clock(tmp_path: Path) -> None:
    cap = tmp_path / "frags.pcap"
    fragment_flood(cap, 40, rate=2.0)
    f = _fragments(analyze_capture(cap))
    assert f.data["count"] == 40 and "clock" not in f.cause and "flood" in f.cause

"""The strongSwan recordings behind docs/failures/certificates.md and liveness.md (root, namespaces).

The pages show ``ipsecdiag analyze`` on captures that only a lab run makes: certificate failures
(not yet valid, expired, from a foreign CA) and a dead peer (responder killed after the tunnel
came up and carried 3 pings, initiator dpd_delay 2 s), and posture.md's rekey collision (both
peers rekey the CHILD SA after 4 s; the router holds the responder's packets for 1.7 s then). This module records them under the file names the pages use,
runs docs/failures/regenerate.py on copies of the pages and checks that each block regenerates
and lists the findings the committed page shows, in the same order: a page that no longer
matches the output fails here.

To refresh the pages themselves (as root)::

    IPSECDIAG_RECORDINGS=/tmp/rec .venv/bin/python -m pytest tests/interop/test_failure_pages_strongswan.py
    IPSECDIAG_RECORDINGS=/tmp/rec .venv/bin/python docs/failures/regenerate.py \\
        docs/failures/certificates.md docs/failures/liveness.md docs/failures/posture.md

The dead-peer and rekey-collision recordings take about 15 s each, the three certificate ones
about 1 s each. posture.md's rekey collision depends on timing: when charon saw none, that test
skips.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from analysis.checks_lab import make_ec_pki
from failure_lab import record
from harness import Lab, missing_prerequisites, run
from swanconf import RESPONDER_ADDR, PeerConfig

_missing = missing_prerequisites(need_nft=True)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]
ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "docs" / "failures"
HEAD = re.compile(r"^\d+\. (ERROR|WARNING|INFO)\s+\[([a-z0-9-]+)\]", re.M)
PUBKEY = PeerConfig(auth="pubkey")
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("IPSECDIAG_RECORDINGS")
    out = Path(keep) if keep else tmp_path_factory.mktemp("pages")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _cert_case(out: Path, name: str, **pki_options: object) -> None:
    pki = make_ec_pki(out / f"{name}.pki", **pki_options)  # type: ignore[arg-type]
    rec = record(out, name, initiator=PUBKEY, responder=PUBKEY, pki=pki)
    assert not rec.initiated, rec.initiate_output[-1000:]
    for ca in ("ca", "foreign-ca"):
        shutil.copy(pki.cert(ca), out / f"{name}.{ca}.crt")


def _kill_responder(lab: Lab) -> None:
    lab.ping(count=3, interval=0.2)  # a tunnel that worked
    lab.peer("responder").stop(signal.SIGKILL)
    time.sleep(11)  # DPD at +2 s, 3 retransmits (1, 1.4, 1.96 s), then a new IKE_SA_INIT


def _regenerate(page: str, recordings: Path, tmp: Path) -> tuple[str, str]:
    copy = tmp / page
    shutil.copy(PAGES / page, copy)
    env = {**os.environ, "IPSECDIAG_RECORDINGS": str(recordings)}
    proc = subprocess.run(
        [sys.executable, str(PAGES / "regenerate.py"), str(copy)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return copy.read_text(), proc.stderr


def _blocks(text: str) -> list[list[tuple[str, str]]]:
    """The (severity, id) heads of every findings block of a page."""
    blocks = re.findall(r"^```\n(.*?)^```\n", text, re.S | re.M)
    return [HEAD.findall(b) for b in blocks if "Findings (" in b]


def _same_findings(page: str, regenerated: str) -> None:
    committed = _blocks((PAGES / page).read_text())
    assert committed and _blocks(regenerated) == committed, (
        f"{page} no longer shows what ipsecdiag says on a fresh recording; regenerate it "
        "(see this module's docstring)"
    )


def test_certificate_page_regenerates_from_fresh_recordings(recordings: Path, tmp_path: Path) -> None:
    _cert_case(recordings, "cert-notyetvalid", validity={"responder": (dt.timedelta(hours=3), 365 * DAY)})
    _cert_case(recordings, "cert-expired", validity={"initiator": (-400 * DAY, -35 * DAY)})
    _cert_case(recordings, "cert-untrusted", foreign_ca="initiator")
    text, err = _regenerate("certificates.md", recordings, tmp_path)
    assert "not regenerated" not in err, err
    _same_findings("certificates.md", text)
    assert "[cert-not-yet-valid]" in text and "2 h 59 min" in text
    assert "[cert-expired]" in text and "35 d before" in text
    assert "[cert-untrusted]" in text and "CN=foreign CA" in text


def test_liveness_page_regenerates_from_a_fresh_dead_peer(recordings: Path, tmp_path: Path) -> None:
    rec = record(
        recordings,
        "dpd-timeout",
        initiator=PeerConfig(dpd_delay=2, dpd_action="restart"),
        responder=PeerConfig(),
        action=_kill_responder,
    )
    assert rec.initiated, rec.initiate_output[-1000:]
    text, err = _regenerate("liveness.md", recordings, tmp_path)
    assert "not regenerated" not in err, err
    _same_findings("liveness.md", text)
    assert "4 transmission(s)" in text and "gave up and started a new IKE SA" in text


def _hold_responder(lab: Lab) -> None:
    """Both peers rekey at 4 s; holding the responder's packets across that moment makes each
    CREATE_CHILD_SA request go out before the other is answered (RFC 7296 §2.8.1)."""
    time.sleep(3.5)
    drop = f"ip saddr {RESPONDER_ADDR} udp dport 4500 counter drop"
    lab.nft(lab.ns["rt"], "ipd_hold", "type filter hook forward priority 0", drop)
    time.sleep(1.7)
    run(["ip", "netns", "exec", lab.ns["rt"], "nft", "delete", "table", "ip", "ipd_hold"])
    time.sleep(4)


def test_posture_page_regenerates_from_a_fresh_rekey_collision(recordings: Path, tmp_path: Path) -> None:
    cfg = PeerConfig(child_rekey_time=4, child_life_time=30)
    rec = record(recordings, "rekey-collision", initiator=cfg, responder=cfg, action=_hold_responder)
    assert rec.initiated, rec.initiate_output[-1000:]
    if "collision" not in rec.initiator_log.read_text():
        pytest.skip("timing: strongSwan saw no rekey collision in this run")
    text, err = _regenerate("posture.md", recordings, tmp_path)
    assert "rekey-collision" not in err, err
    _same_findings("posture.md", text)
    assert "[rekey-collision]" in text

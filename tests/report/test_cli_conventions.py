"""CLI conventions of issue 13: --version, -h, explain by notify name as the JSON writes it
and by number."""

from __future__ import annotations

import subprocess
import sys

import pytest


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipsecdiag", *args], capture_output=True, text=True, timeout=60, env={"COLUMNS": "100"}
    )


def test_version_and_short_help() -> None:
    from importlib.metadata import version

    p = cli("--version")
    assert (p.returncode, p.stdout) == (0, f"ipsecdiag {version('ipsecdiag')}\n")
    h = cli("analyze", "-h")
    assert h.returncode == 0 and "--brief" in h.stdout and "KEYFILE" in h.stdout and "CAPTURE" in h.stdout


@pytest.mark.parametrize(
    ("key", "title"),
    [
        ("14", "Notify NO_PROPOSAL_CHOSEN"),
        ("no_proposal_chosen", "Notify NO_PROPOSAL_CHOSEN"),
        ("R_U_THERE", "Notify R_U_THERE"),
        ("36136", "Notify R_U_THERE"),
        ("16388", "Notify NAT_DETECTION_SOURCE_IP"),
        ("ike-unanswered", "ike-unanswered: "),
    ],
)
def test_explain_accepts_names_and_numbers(key: str, title: str) -> None:
    p = cli("explain", key)
    assert p.returncode == 0 and p.stdout.startswith(title), p.stdout + p.stderr


def test_explain_unknown_is_one_line() -> None:
    p = cli("explain", "99999")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "'99999'" in p.stderr


def test_capture_on_stdin() -> None:
    from corpus import REPO_ROOT

    data = (REPO_ROOT / "sample_pcaps" / "ikev2-no-proposal.pcap").read_bytes()
    p = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "analyze", "-", "--json", "-"], input=data, capture_output=True, timeout=60
    )
    import json

    doc = json.loads(p.stdout)
    assert p.returncode == 1 and doc["source"]["files"] == ["-"]
    assert [f["id"] for f in doc["findings"]][0] == "ike-no-proposal-chosen"
    bad = subprocess.run([sys.executable, "-m", "ipsecdiag", "analyze", "-"], input=b"garbage\n", capture_output=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.decode() == "ipsecdiag: error: -: not a pcap or pcapng file (starts with 'garbage\\n')\n"

"""Start-up of the file commands: reading a capture does not import the IKE engine, the
prober or the live capture back ends (a third of a second on a small capture, issue 12)."""

from __future__ import annotations

import subprocess
import sys

from tests.corpus import REPO_ROOT

HEAVY = ("ipsecdiag.engine", "ipsecdiag.probe", "ipsecdiag.live")
# The X.509 stack (ours and cryptography's) is 45 ms of imports; only CERT payloads or --ca need it.
X509 = ("ipsecdiag.crypto.x509", "cryptography.x509")


def imported(*args: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ipsecdiag", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc.returncode, names


def test_analyze_imports_no_active_command() -> None:
    sample = str(REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap")
    _, names = imported("analyze", sample, "--json", "/dev/null", "--fail-on", "never")
    assert "ipsecdiag.pipeline" in names  # the analysis did run
    assert not {n for n in names if n.startswith(HEAVY)}


def test_active_commands_still_registered() -> None:
    status, names = imported("probe", "--help")
    assert status == 0 and "ipsecdiag.probe.cli" in names
    status, names = imported("--help")
    assert status == 0 and "ipsecdiag.live.command" in names


def test_analyze_without_certificates_imports_no_x509() -> None:
    sample = str(REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap")
    status, names = imported("analyze", sample, "--json", "/dev/null", "--fail-on", "never")
    assert status == 0 and "ipsecdiag.diagnosis.checks.certs" in names
    assert not {n for n in names if n.startswith(X509)}

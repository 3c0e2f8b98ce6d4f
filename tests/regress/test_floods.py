"""Floods stay bounded (issue 14): 50k half-open IKE SAs and 50k ESP SPIs each within 60 s and
256 MiB, summarised in findings that say what they are; fragments that never complete are
counted and reported; a real negotiation inside a flood is still reconstructed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from regress.floods import fragment_flood, half_open_flood, half_open_flood_then, many_spi_flood
from regress.inputs import BASE
from typer.testing import CliRunner

from ipsecdiag.cli import app

LIMIT_S = 60
LIMIT_MIB = 256
# Runs the command line in a child and reports its peak resident set size (KiB on Linux).
_MEASURE = (
    "import resource, sys\n"
    "from ipsecdiag.cli import main\n"
    "sys.argv = ['ipsecdiag'] + sys.argv[1:]\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _analyze_measured(cap: Path, out: Path) -> tuple[float, float, int, dict]:
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-c", _MEASURE, "analyze", str(cap), "--json", str(out), "--fail-on", "never"],
        capture_output=True,
        text=True,
        timeout=LIMIT_S * 4,
        check=False,
    )
    seconds = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-2000:]
    rss = next(int(ln.split()[1]) for ln in res.stderr.splitlines() if ln.startswith("maxrss"))
    return seconds, rss / 1024, len(res.stdout.splitlines()), json.loads(out.read_text())


def _findings(rep: dict, fid: str, kind: str | None = None) -> list[dict]:
    return [f for f in rep["findings"] if f["id"] == fid and (kind is None or f["data"].get("kind") == kind)]


@pytest.mark.slow
def test_fifty_thousand_half_open_ike_sas(tmp_path: Path) -> None:
    cap = tmp_path / "half-open.pcap"
    half_open_flood(cap, 50_000)
    seconds, mib, lines, rep = _analyze_measured(cap, tmp_path / "r.json")
    assert seconds < LIMIT_S and mib < LIMIT_MIB, (seconds, mib)
    (flood,) = _findings(rep, "ike-half-open-flood")
    assert flood["data"]["half_open"] == 50_000 and flood["data"]["responder"] == "192.0.2.1"
    assert abs(flood["data"]["rate"] - 2000) < 50  # the generator's 2000 requests per second
    (summary,) = _findings(rep, "capture-health", "half-open-summarised")
    assert summary["data"]["summarised"] + len(rep["ike_sas"]) == 50_000
    assert len(rep["ike_sas"]) <= 50 and lines < 3000


@pytest.mark.slow
def test_fifty_thousand_esp_spis(tmp_path: Path) -> None:
    cap = tmp_path / "spis.pcap"
    many_spi_flood(cap, 50_000)
    seconds, mib, _lines, rep = _analyze_measured(cap, tmp_path / "r.json")
    assert seconds < LIMIT_S and mib < LIMIT_MIB, (seconds, mib)
    (summary,) = _findings(rep, "capture-health", "esp-flows-summarised")
    assert summary["data"]["spis"] + len(rep["esp_flows"]) == 50_000
    assert summary["data"]["packets"] == 50_000 - len(rep["esp_flows"])


def test_an_ikev1_main_mode_flood_is_bounded_too(tmp_path: Path) -> None:
    cap = tmp_path / "v1.pcap"
    half_open_flood(cap, 2_000, ikev1=True)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["analyze", str(cap), "--json", str(out)])
    assert res.exit_code in (0, 1), res.stderr
    rep = json.loads(out.read_text())
    (flood,) = _findings(rep, "ike-half-open-flood")
    assert flood["data"]["half_open"] == 2_000 and flood["data"]["ikev1"] == 2_000 - len(rep["ike_sas"])
    assert len(rep["ike_sas"]) == 50


def test_incomplete_fragments_are_counted_with_hosts_and_payload(tmp_path: Path) -> None:
    cap = tmp_path / "frags.pcap"
    fragment_flood(cap, 5_000)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["analyze", str(cap), "--json", str(out)])
    assert res.exit_code in (0, 1), res.stderr
    (f,) = _findings(json.loads(out.read_text()), "capture-health", "incomplete-fragments")
    assert f["data"]["count"] == 5_000 and f["data"]["by_payload"] == {"IKE": 5_000}
    assert any("10.0.0.1 -> 192.0.2.1 carrying IKE" in e for e in f["evidence"])
    assert "[capture-health] IP datagrams whose fragments" in res.stdout


def test_a_real_negotiation_inside_a_flood_is_still_reconstructed(tmp_path: Path) -> None:
    cap = tmp_path / "flood-then-real.pcap"
    half_open_flood_then(cap, 300, BASE)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["analyze", str(cap), "--json", str(out)])
    assert res.exit_code in (0, 1), res.stderr
    rep = json.loads(out.read_text())
    real = [sa for sa in rep["ike_sas"] if not sa["spi_i"].startswith("2000")]
    assert len(real) == 1 and real[0]["state"] == "established", real
    assert _findings(rep, "ike-half-open-flood")[0]["data"]["half_open"] == 300

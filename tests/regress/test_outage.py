"""Many clients of a gateway that never answers are an outage, not a flood (review 2, item 9).

Real clients retransmit their IKE_SA_INIT request unchanged, same SPI, with back-off (RFC 7296
§2.1); a flood with forged sources or a scanner sends each SPI once. Whether the requests are kept
as IKE SAs (a few clients) or summarised by the half-open ledger (more than 50 toward one
responder), the report is one ``ike-unanswered`` error naming the responder, and the exit status
is 1 either way: more victims never lower the severity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from regress.floods import clients_retrying, half_open_flood
from typer.testing import CliRunner

from ipsecdiag.cli import app


def _analyze(cap: Path, out: Path) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["analyze", str(cap), "--json", str(out)], env={"COLUMNS": "80"})
    assert res.exit_code in (0, 1), res.stderr
    return res.exit_code, json.loads(out.read_text())


@pytest.mark.parametrize("clients", [10, 55, 400])
def test_retrying_clients_of_a_dead_gateway_are_one_error_whatever_their_number(tmp_path: Path, clients: int) -> None:
    cap = tmp_path / "outage.pcap"
    clients_retrying(cap, clients)
    rc, rep = _analyze(cap, tmp_path / "r.json")
    assert rc == 1
    errors = [f for f in rep["findings"] if f["severity"] == "error"]
    assert [f["id"] for f in errors] == ["ike-unanswered"], [f["title"] for f in rep["findings"]]
    assert errors[0]["title"] == f"203.0.113.5:500 answered none of {clients} initiators, which retried"
    assert not [f for f in rep["findings"] if f["id"] == "ike-half-open-flood"]
    if clients > 50:  # summarised: the retransmissions are counted, not hidden
        assert errors[0]["data"]["retried"] == clients
        assert errors[0]["data"]["retransmissions"] == 2 * clients
        assert f"{3 * clients} request(s) sent" in errors[0]["evidence"][0]


def test_a_flood_that_never_retransmits_stays_a_flood_warning(tmp_path: Path) -> None:
    cap = tmp_path / "flood.pcap"
    half_open_flood(cap, 200, initiators=200, rate=5.0)
    rc, rep = _analyze(cap, tmp_path / "r.json")
    assert rc == 0
    (flood,) = [f for f in rep["findings"] if f["id"] == "ike-half-open-flood"]
    assert "no request was retransmitted" in " ".join(flood["evidence"])
    assert not [f for f in rep["findings"] if f["id"] == "ike-unanswered"]

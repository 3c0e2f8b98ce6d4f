"""``ipsecdiag probe scan`` on the command line: the JSON document, the pcapng, the table, and
bad usage as one line with exit status 2 (the gateway is the engine responder on loopback)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from loopback import loopback_peer
from test_scan_engine import engine_reply, responder_config
from typer.testing import CliRunner

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.cli import app

runner = CliRunner()


def test_json_table_and_pcapng(tmp_path: Path) -> None:
    reply, _ = engine_reply(responder_config("aes256-sha256-modp1024, aes256gcm16-prfsha384-ecp384"))
    pcapng = tmp_path / "scan.pcapng"
    with loopback_peer(lambda d: reply(d, time.monotonic()), max_datagrams=400) as (port, _got):
        res = runner.invoke(
            app,
            ["probe", "scan", "127.0.0.1", "--remote-port", str(port), "--rate", "50", "--timeout", "0.3",
             "--max-time", "60", "--write", str(pcapng), "--json", "-"],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout[res.stdout.index("{") :])
    assert set(doc) >= {"gateway", "accepted", "rejected", "notifies", "vendor_ids", "ikev1", "packets_sent"}
    assert doc["gateway"].startswith("127.0.0.1")
    names = {a["name"]: a for a in doc["accepted"]}
    assert set(names) == {
        "ENCR_AES_CBC_256", "ENCR_AES_GCM_16_256", "PRF_HMAC_SHA2_256", "PRF_HMAC_SHA2_384",
        "AUTH_HMAC_SHA2_256_128", "MODP_1024", "ECP_384",
    }  # fmt: skip
    # the posture rules of analyze: MODP-1024 is weak, nothing else here is
    assert names["MODP_1024"]["weak"] and not names["ECP_384"]["weak"]
    assert sorted(doc["proposals"]) == ["aes256-sha256-modp1024", "aes256gcm16-prfsha384-ecp384"]
    assert doc["ikev1"] == {"main": _silent(), "aggressive": _silent()}  # the engine speaks IKEv2 only
    with open_capture(pcapng) as cap:
        frames = list(cap.frames())
    assert sum(1 for f in frames if f[3][12:16] == bytes([127, 0, 0, 1]) and f[3][20:22] != port.to_bytes(2, "big")) == doc["packets_sent"]


def _silent() -> dict[str, object]:
    return {"answered": False, "chosen": None, "notifies": [], "vendor_ids": [], "reveals_hash": False}


def test_silent_gateway_is_bounded_and_says_so() -> None:
    with loopback_peer(lambda d: [], max_datagrams=50) as (port, got):
        t0 = time.monotonic()
        res = runner.invoke(app, ["probe", "scan", "127.0.0.1", "--remote-port", str(port), "--rate", "20", "--timeout", "0.2", "--max-time", "5"])
        elapsed = time.monotonic() - t0
    assert res.exit_code == 1 and elapsed < 5 + 2
    assert "no answer to IKE_SA_INIT" in res.output
    assert f"{len(got)} packets sent" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rate", "0"), "--rate"),
        (("--max-time", "-1"), "--max-time"),
        (("--port", "70000"), "--port"),
        (("--backoff", "1000"), "--backoff"),
        (("--source", "192.0.2.250"), "not an address of this host"),
    ],
)
def test_bad_usage_is_one_line(args: tuple[str, ...], message: str) -> None:
    res = runner.invoke(app, ["probe", "scan", "127.0.0.1", *args])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1


def test_unresolvable_gateway() -> None:
    res = runner.invoke(app, ["probe", "scan", "no-such-host.invalid"])
    assert res.exit_code == 2 and "cannot resolve" in res.output


def test_interrupt_keeps_what_was_learnt(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipsecdiag.probe import transport

    calls = []
    real = transport.Driver._receive

    def interrupt_after_three(self, sock, now):  # type: ignore[no-untyped-def]
        calls.append(now)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(self, sock, now)

    monkeypatch.setattr(transport.Driver, "_receive", interrupt_after_three)
    reply, _ = engine_reply(responder_config("aes256gcm16-prfsha256-ecp256"))
    with loopback_peer(lambda d: reply(d, time.monotonic()), max_datagrams=50) as (port, _got):
        res = runner.invoke(app, ["probe", "scan", "127.0.0.1", "--remote-port", str(port), "--rate", "50", "--json", "-"])
    assert res.exit_code == 130 and "Traceback" not in res.output
    doc = json.loads(res.stdout[res.stdout.index("{") :])
    assert doc["stopped"] == "interrupted" and not doc["complete"] and doc["round_trips"] == 3


def test_resend_schedule_fit() -> None:
    from ipsecdiag.probe.scan import schedule_fit

    # charon with retransmit_timeout 1.0, retransmit_base 1.4 (measured in the lab)
    first, base = schedule_fit([1.0, 2.4, 4.36]) or (0, 0)
    assert abs(first - 1.0) < 0.01 and abs(base - 1.4) < 0.01
    # strongSwan's defaults: 4 s, x1.8
    first, base = schedule_fit([4.0, 11.2, 24.16]) or (0, 0)
    assert abs(first - 4.0) < 0.01 and abs(base - 1.8) < 0.01
    assert schedule_fit([1.0]) is None and schedule_fit([1.0, 2.0, 2.2]) is None


def test_incomplete_scan_lists_untested_not_rejected() -> None:
    # review #17: a scan stopped by --max-time (as with --rate 2 --max-time 3 against the lab
    # gateway) listed the transforms it never asked about, and the one just chosen, as rejected.
    reply, _ = engine_reply(responder_config("aes256gcm16-prfsha256-ecp256"))
    with loopback_peer(lambda d: reply(d, time.monotonic()), max_datagrams=50) as (port, _got):
        res = runner.invoke(
            app,
            ["probe", "scan", "127.0.0.1", "--remote-port", str(port), "--rate", "2", "--timeout", "0.3",
             "--max-time", "2.2", "--no-ikev1", "--json", "-"],
        )  # fmt: skip
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout[res.stdout.index("{") :])
    assert doc["complete"] is False and doc["stopped"] == "--max-time reached"
    accepted = {a["name"] for a in doc["accepted"]}
    rejected = {a["name"] for a in doc["rejected"]}
    untested = {a["name"] for a in doc["untested"]}
    assert {"ENCR_AES_GCM_16_256", "PRF_HMAC_SHA2_256", "ECP_256"} <= accepted
    assert not accepted & rejected and not rejected & untested and not accepted & untested
    assert "ENCR_AES_CBC_256" in untested and "ENCR_AES_GCM_16_256" not in rejected
    assert "not tested ENCR" in res.output and "rejected ENCR" not in res.output


@pytest.mark.parametrize("command", ["scan", "mtu"])
def test_help_shows_flags_without_placeholders(command: str) -> None:
    # review #19: "--ikev1 <bool>", "--vip <bool>", "--ca <list[Path]>" read as options taking a value
    res = runner.invoke(app, ["probe", command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    options = [line for line in res.output.splitlines() if "--" in line and "--help" not in line]
    assert options
    for bad in ("<bool>", "<float>", "<int>", "<list", "<path>", "<str>"):
        assert not any(bad in line for line in options), (bad, [line for line in options if bad in line])
    flag = "--ikev1" if command == "scan" else "--vip"
    assert any(flag in line for line in options)


def test_repeated_anomalies_are_one_line_with_a_count() -> None:
    # review #18: one line per query for the same oddity buries the result
    from rich.console import Console

    from ipsecdiag.engine.config import Endpoint
    from ipsecdiag.engine.scan import Observations
    from ipsecdiag.engine.scan_plan import PlanResult
    from ipsecdiag.probe.record import SessionRecord
    from ipsecdiag.probe.scan import ScanResult, render
    from ipsecdiag.probe.transport import Counters

    plan = PlanResult(anomalies=["INVALID_KE_PAYLOAD asked for 99, which was not offered"] * 7 + ["other"])
    r = ScanResult(Endpoint("192.0.2.1", 500), Endpoint("192.0.2.2", 500), plan, Observations(), Counters(), SessionRecord(), "done", 1.0)
    console = Console(width=200, record=True)
    render(console, r)
    text = console.export_text()
    assert text.count("INVALID_KE_PAYLOAD asked for 99") == 1 and "(7 queries)" in text
    assert "anomaly: other\n" in text


def test_cookie_demand_names_our_own_half_open_sas() -> None:
    # review #22: after a few scans charon asked for cookies because of our own half-open SAs
    from rich.console import Console

    from ipsecdiag.engine.config import Endpoint
    from ipsecdiag.engine.scan import Observations
    from ipsecdiag.engine.scan_plan import PlanResult
    from ipsecdiag.probe.record import SessionRecord
    from ipsecdiag.probe.scan import ScanResult, render
    from ipsecdiag.probe.transport import Counters

    obs = Observations(cookie_demanded=True, cookie_len=24)
    r = ScanResult(Endpoint("192.0.2.1", 500), Endpoint("192.0.2.2", 500), PlanResult(full_answers=1), obs, Counters(), SessionRecord(), "done", 1.0)
    console = Console(width=300, record=True)
    render(console, r)
    text = console.export_text()
    assert "COOKIE demanded (24 octets)" in text and "earlier probes from this address" in text and "this scan left 1" in text

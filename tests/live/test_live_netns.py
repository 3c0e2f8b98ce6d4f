"""``ipsecdiag live`` on a real veth while strongSwan peers bring a tunnel up, carry pings and
then fail with a proposal mismatch (root, strongSwan; the lab of tests/interop/harness.py).

What it shows:
* the final live report equals ``analyze`` of the pcapng the session wrote (all but the
  source's name, and the additional ``live`` object);
* the NO_PROPOSAL_CHOSEN finding is on the dashboard less than a second after its packet was
  captured (frames recorded from a rich ``Console(record=True)`` with their wall-clock times;
  the packet's time is its capture timestamp, the same clock).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))

from harness import Lab, PeerConfig, missing_prerequisites
from swanconf import swanctl_conf

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

_missing = missing_prerequisites()
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout and proc.poll() is not None else ""
            raise AssertionError(f"live did not start: {out[-2000:]}")
        time.sleep(0.05)


def _iso(t: str) -> float:
    return datetime.fromisoformat(t).timestamp()


def test_live_session_on_a_veth_matches_analyze_and_shows_the_mismatch_within_a_second(tmp_path: Path) -> None:
    written, report, frames_out, ready = (tmp_path / n for n in ("live.pcapng", "live.json", "frames.json", "ready"))
    good = PeerConfig(proposals="aes256gcm16-prfsha256-ecp256")
    with Lab(tmp_path / "lab") as lab:
        lab.start_peer("responder", good)
        initiator = lab.start_peer("initiator", good)
        argv = ["ip", "netns", "exec", lab.ns["rt"], sys.executable, str(HERE / "live_recorder.py")]
        argv += ["rtc", str(written), str(report), str(frames_out), str(ready)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        rec = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_for(ready, rec, 30)
            up = lab.initiate()
            assert up.ok, up.output
            ping = lab.ping(count=5, interval=0.2)
            assert " 0% packet loss" in ping.output, ping.output
            assert lab.terminate().ok
            # the initiator now offers what the responder does not accept
            bad = PeerConfig(proposals="aes128-sha1-modp2048")
            (initiator.directory / "swanctl" / "swanctl.conf").write_text(swanctl_conf(bad, "initiator"))
            initiator.swanctl("--load-conns", check=True)
            failed = lab.initiate(timeout=10)
            assert not failed.ok
            time.sleep(1.5)  # let a dashboard redraw follow the last packet
        finally:
            if rec.poll() is None:
                rec.send_signal(signal.SIGINT)  # the user's Ctrl-C
            out, _ = rec.communicate(timeout=60)
        assert rec.returncode == 0, out.decode(errors="replace")[-3000:]

    live_doc = json.loads(report.read_text())
    info = live_doc.pop("live")
    assert info["stopped"] == "interrupted" and info["written"] == [str(written)]
    assert info["dropped"]["kernel"] == 0
    an = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "analyze", str(written), "--json", "-", "--fail-on", "never"],
        capture_output=True, text=True, timeout=120, check=True, cwd=REPO,
    )  # fmt: skip
    an_doc = json.loads(an.stdout)
    assert live_doc["source"].pop("files") == ["rtc"] and an_doc["source"].pop("files") == [str(written)]
    live_doc["source"].pop("formats"), an_doc["source"].pop("formats")
    assert live_doc == an_doc

    # what the session saw: a tunnel that came up and carried the pings, then the mismatch
    states = [sa["state"] for sa in live_doc["ike_sas"]]
    assert "failed" in states and any(s in ("established", "deleted") for s in states), states
    assert sum(f["packets"] for f in live_doc["esp_flows"]) >= 10
    (mismatch,) = [f for f in live_doc["findings"] if f["id"] == "ike-no-proposal-chosen"]

    # the finding on the dashboard within a second of the packet that carried it
    frames = json.loads(frames_out.read_text())
    shown = [t for t, text in frames if "ike-no-proposal-chosen" in text]
    assert shown, f"the finding never appeared on the dashboard: {len(frames)} frames, last {frames[-1][1] if frames else None}"
    sas = [sa for sa in live_doc["ike_sas"] if sa["state"] == "failed"]
    responses = [
        e["response"] for sa in sas for e in sa["exchanges"] if e["type"] == "IKE_SA_INIT" and e["response"]
    ]
    notify_frame = [r for r in responses if "NO_PROPOSAL_CHOSEN" in json.dumps(r["notifies"])][0]
    packet_time = _iso(notify_frame["time"])
    delay = shown[0] - packet_time
    print(f"finding on the dashboard {delay:.3f}s after its packet")
    assert 0 <= delay < 1.0, f"shown {delay:.3f}s after the packet"
    first_frame = next(text for t, text in frames if t == shown[0])
    assert "ERROR" in first_frame and "IKE SAs" in first_frame
    assert mismatch["frames"]


_SEND = """
import socket, sys, time
sys.path.insert(0, {repo!r})
from ipsecdiag.capture.reader import open_capture
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("lv-a", 0))
noise = bytes.fromhex("ffffffffffff020000000001080045000028000040004006f96cc0000201c0000202") + bytes(20)
with open_capture({pcap!r}) as c:
    for fr in c.frames():
        s.send(fr[3])
        s.send(noise)  # TCP to port 0 between the IPsec frames: the filter drops it
        time.sleep(0.01)
"""


@pytest.mark.parametrize("backend", ["dumpcap", "tcpdump", "scapy"])
def test_each_back_end_captures_exactly_the_ipsec_frames(tmp_path: Path, backend: str) -> None:
    """The real tools on a veth pair: the sample's 26 IPsec frames arrive, the noise does not."""
    tag = f"ipdlv-{os.getpid()}"
    ns_a, ns_b = f"{tag}-a", f"{tag}-b"
    pcap = REPO / "sample_pcaps" / "ikev2-psk-ok.pcap"
    try:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
        subprocess.run(
            ["ip", "link", "add", "lv-a", "netns", ns_a, "type", "veth", "peer", "name", "lv-b", "netns", ns_b],
            check=True, timeout=10,
        )  # fmt: skip
        for ns, dev in ((ns_a, "lv-a"), (ns_b, "lv-b")):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True, timeout=10)
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], timeout=10)
        argv = ["ip", "netns", "exec", ns_b, sys.executable, "-m", "ipsecdiag", "live", "-i", "lv-b"]
        argv += ["--backend", backend, "--duration", "6", "--json", "-", "--fail-on", "never"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        live = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        time.sleep(2.0)
        sender = tmp_path / "send.py"
        sender.write_text(_SEND.format(repo=str(REPO), pcap=str(pcap)))
        subprocess.run(["ip", "netns", "exec", ns_a, sys.executable, str(sender)], check=True, timeout=30)
        out, err = live.communicate(timeout=60)
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)
    assert live.returncode == 0, err
    doc = json.loads(out)
    src = doc["source"]
    assert (src["frames"], src["ike_messages"], src["esp_packets"]) == (26, 6, 20), src
    assert doc["live"]["backend"] == backend and doc["live"]["dropped"]["kernel"] == 0

"""Dead peer detection recorded from strongSwan: the responder dies after the tunnel is up.

The initiator (dpd_delay 2 s) sends a liveness check, retransmits it three times (1, 1.4,
1.96 s), gives up and starts a new IKE_SA_INIT that nobody answers. Takes about 15 s.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from checks_keyed import analyze, first_error, needs_decryption
from checks_lab import LabRun, needs_lab, record_lab
from swanconf import PeerConfig

pytestmark = [pytest.mark.interop, pytest.mark.slow, needs_lab, needs_decryption]


@pytest.fixture(scope="module")
def dead_peer(tmp_path_factory: pytest.TempPathFactory) -> LabRun:
    def kill_responder(lab) -> None:
        lab.peer("responder").stop(signal.SIGKILL)
        time.sleep(11)

    return record_lab(
        tmp_path_factory.mktemp("dpd"),
        "dpd",
        initiator=PeerConfig(dpd_delay=2, dpd_action="restart"),
        responder=PeerConfig(),
        action=kill_responder,
    )


def test_dpd_timeout_with_keys(dead_peer: LabRun) -> None:
    r = analyze(dead_peer.pcap, dead_peer.initiator_log)
    f = first_error(r)
    assert f.id == "dpd-timeout" and f.data["certain"] is True
    assert f.data["transmissions"] == 4  # the request and strongSwan's 3 retransmissions
    assert any("gave up and started a new IKE SA" in e for e in f.evidence)
    # the unanswered exchanges are reported too, ranked below their cause
    ids = [x.id for x in r.findings]
    assert "ike-unanswered" in ids and ids.index("ike-unanswered") > ids.index("dpd-timeout")


def test_dpd_timeout_without_keys_is_probable(dead_peer: LabRun) -> None:
    from ipsecdiag.pipeline import analyze_capture

    f = first_error(analyze_capture(Path(dead_peer.pcap)))
    assert f.id == "dpd-timeout" and f.data["certain"] is False

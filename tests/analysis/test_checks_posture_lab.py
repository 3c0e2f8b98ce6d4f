"""A CHILD SA rekey collision recorded from strongSwan (takes about 12 s).

Both peers rekey after 4 s (rand_time 0). The router drops the responder's packets for 1.7 s
around that moment, so the initiator starts its own rekey before the responder's request
arrives: each request goes out before the other is answered (RFC 7296 §2.8.1).
"""

from __future__ import annotations

import time

import pytest
from checks_keyed import analyze, needs_decryption
from checks_lab import LabRun, needs_lab, record_lab
from harness import run as lab_run
from swanconf import RESPONDER_ADDR, PeerConfig

from ipsecdiag.reconstruction.model import Severity

pytestmark = [pytest.mark.interop, pytest.mark.slow, needs_lab, needs_decryption]


@pytest.fixture(scope="module")
def collision(tmp_path_factory: pytest.TempPathFactory) -> LabRun:
    def hold_responder(lab) -> None:
        time.sleep(3.5)
        lab.nft(
            lab.ns["rt"],
            "ipd_hold",
            "type filter hook forward priority 0",
            f"ip saddr {RESPONDER_ADDR} udp dport 4500 counter drop",
        )
        time.sleep(1.7)
        lab_run(["ip", "netns", "exec", lab.ns["rt"], "nft", "delete", "table", "ip", "ipd_hold"])
        time.sleep(4)

    cfg = PeerConfig(child_rekey_time=4, child_life_time=30)
    return record_lab(
        tmp_path_factory.mktemp("rekey"), "rekey", initiator=cfg, responder=cfg, action=hold_responder
    )


def test_rekey_collision_and_no_pfs(collision: LabRun) -> None:
    log = collision.initiator_log.read_text()
    if "collision" not in log:
        pytest.skip("timing: strongSwan saw no rekey collision in this run")
    r = analyze(collision.pcap, collision.initiator_log)
    [f] = [x for x in r.findings if x.id == "rekey-collision"]
    assert f.severity == Severity.WARNING and f.data == {"target": "child"}
    [n] = [x for x in r.findings if x.id == "no-pfs"]
    assert n.data["rekeys"] >= 2
    assert not [x for x in r.findings if x.severity == Severity.ERROR]

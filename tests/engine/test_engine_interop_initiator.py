"""The engine as initiator against a charon gateway over real UDP in the lab's namespaces:
IKE_SA_INIT, IKE_AUTH (NAT-T forced by kernel-libipsec), a second CHILD SA with PFS, a CHILD
rekey, an IKE rekey, liveness and Delete (tests/engine/engine_live_initiator.py drives it)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))  # the lab's helpers import by name
from harness import Lab, PeerConfig, missing_prerequisites
from probelab import start_gateway
from swanconf import (
    DEFAULT_PSK,
    INITIATOR_ID,
    INITIATOR_NET,
    RESPONDER_ADDR,
    RESPONDER_ID,
    RESPONDER_NET,
)

_missing = missing_prerequisites(need_pki=False, need_nft=False)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]
_SCRIPT = Path(__file__).with_name("engine_live_initiator.py")
_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("engine-init-lab")) as lab:
        yield lab


@pytest.mark.parametrize(
    ("ike", "esp"),
    [("aes256gcm16-prfsha256-ecp256", "aes256gcm16-modp2048"), ("aes128-sha256-modp2048", "aes128-sha256-ecp256")],
)
def test_engine_initiator_full_life_against_charon(lab: Lab, ike: str, esp: str) -> None:
    start_gateway(lab, f"gw-{ike[:6]}", PeerConfig(proposals=ike, esp_proposals=esp))
    argv = ["ip", "netns", "exec", lab.ns["cl"], sys.executable, str(_SCRIPT), RESPONDER_ADDR, DEFAULT_PSK]
    argv += [INITIATOR_ID, RESPONDER_ID, INITIATOR_NET, RESPONDER_NET, ike, esp]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=_ROOT, check=False)
    log = lab.peer("responder").log.read_text(errors="replace") if lab.peer("responder").log.exists() else ""
    assert res.returncode == 0, res.stdout + res.stderr[-3000:] + "\n--- charon:\n" + log[-4000:]
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["encap"]  # kernel-libipsec fakes NAT-D: the engine moved to 4500
    assert doc["events"].count("ChildSaUp") == 3 and "ChildSaRekeyed" in doc["events"]
    assert "IkeSaRekeyed" in doc["events"]
    assert doc["events"][-1] == "IkeSaDeleted" and doc["state"] == "closed"
    # charon saw the same: its IKE SA was rekeyed and then deleted by us
    assert "IKE_SA c[2] rekeyed" in log and "received DELETE for IKE_SA c[2]" in log, log[-3000:]

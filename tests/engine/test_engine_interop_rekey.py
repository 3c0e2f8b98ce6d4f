"""CREATE_CHILD_SA against Debian's strongSwan: a charon initiator rekeys its CHILD SA and then its
IKE SA (RFC 7296 §1.3.2, §1.3.3, §2.18) while ``ipsecdiag responder`` (this engine) answers.

Uses the interop lab of tests/interop (namespaces, charon, bounded waits); skipped without root
and strongSwan like those tests.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))  # the lab's helpers import by name
from harness import Lab, PeerConfig, missing_prerequisites
from probelab import Responder, psk_file
from swanconf import INITIATOR_ID, INITIATOR_NET, RESPONDER_ID, RESPONDER_NET

_missing = missing_prerequisites(need_pki=False, need_nft=False)
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("engine-rekey-lab")) as lab:
        yield lab


def test_charon_rekeys_child_and_ike_sa_against_the_engine(lab: Lab, tmp_path: Path) -> None:
    args = ["--psk-file", str(psk_file(tmp_path)), "--id", RESPONDER_ID, "--remote-id", INITIATOR_ID]
    args += ["--ts", RESPONDER_NET, "--remote-ts", INITIATOR_NET, "--esp", "aes256gcm16-modp2048,aes256gcm16"]
    args += ["--once", "--linger", "40"]
    responder = Responder(lab, tmp_path, args, timeout=60)
    cfg = PeerConfig(child_rekey_time=6, rekey_time=14, esp_proposals="aes256gcm16-modp2048")
    try:
        lab.start_peer("initiator", cfg)
        up = lab.initiate(timeout=15)
        assert up.ok, up.output[-2000:] + "\n--- responder:\n" + responder.output()[-2000:]
        before = lab.list_sas("initiator")
        deadline = time.monotonic() + 30
        sas = before
        while time.monotonic() < deadline:  # bounded: both rekeys are due within 14 s
            time.sleep(1)
            sas = lab.list_sas("initiator")
            if re.search(r"c: #[2-9]", sas) and re.search(r"net: #[3-9]", sas):
                break
        lab.terminate(timeout=10)
        responder.wait(timeout=30)
    finally:
        responder.stop()
        lab.peers.pop("initiator").stop()
    out = responder.output()
    # The IKE SA was replaced (unique id #2+) and the CHILD SA rekeyed (net #3+: the first
    # rekey made #2, the IKE rekey or the next CHILD rekey #3), still established and installed.
    assert re.search(r"c: #[2-9]", sas), sas + "\n--- before:\n" + before + "\n--- responder:\n" + out[-3000:]
    assert re.search(r"net: #[2-9]", sas), sas
    assert "ESTABLISHED" in sas and "INSTALLED" in sas, sas
    # The CHILD SAs the engine installed match charon's: every rekey answered, no errors.
    assert "error" not in out.lower() and out.count("child-sa-up") >= 3, out[-3000:]
    # Not asserted: the Delete on the *new* IKE SA at the end. ipsecdiag responder routes
    # datagrams by the first SPIi it saw, so after charon's IKE rekey (new SPIi) the final
    # Delete does not reach the engine (probe/responder.py; IkeSa.ike_spis() lists them).

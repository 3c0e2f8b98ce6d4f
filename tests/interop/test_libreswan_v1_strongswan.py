"""libreswan 4.10 pluto (unpacked beside charon, see ../shared/lab/README.md) as IKEv1 initiator
against a strongSwan charon responder: Main Mode completes, Quick Mode stops after message 2.

Without kernel ESP pluto cannot install the IPsec SA it negotiated, so it never sends Quick
Mode message 3; charon retransmits message 2 until it gives up (about 7 s). ipsecdiag must name
the phase, the missing message and the side that stopped, and say that no CHILD SA exists.
pluto never logs IKEv1 IKE SA keys (only CHILD SA keymat), so its log is read as a key source
that matches nothing here, and charon's log decrypts the exchange. Root; skipped without an
unpacked libreswan (``.ci/run`` unpacks one into /opt/ipsecdiag-libreswan).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from failure_lab import Pluto, analyze_json, libreswan_missing
from harness import DEFAULT_PSK, Lab, missing_prerequisites
from swanconf import (
    INITIATOR_ADDR,
    INITIATOR_ID,
    INITIATOR_NET,
    RESPONDER_ADDR,
    RESPONDER_ID,
    RESPONDER_NET,
    PeerConfig,
)

_missing = missing_prerequisites()
_no_pluto = libreswan_missing()
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing)),
    pytest.mark.skipif(_no_pluto is not None, reason=_no_pluto or ""),
]

CONN = f"""conn c
    ikev2=no
    authby=secret
    left={INITIATOR_ADDR}
    leftid=@{INITIATOR_ID}
    leftsubnet={INITIATOR_NET}
    right={RESPONDER_ADDR}
    rightid=@{RESPONDER_ID}
    rightsubnet={RESPONDER_NET}
    ike=aes256-sha2_256-modp2048
    esp=aes256-sha2_256
    pfs=no
    auto=add
"""


@pytest.fixture(scope="module")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    out = tmp_path_factory.mktemp("pluto-v1")
    pcap = out / "qm-stalled.pcap"
    with Lab(out / "lab") as lab:
        charon = lab.start_peer(
            "responder", PeerConfig(version=1, proposals="aes256-sha256-modp2048", esp_proposals="aes256-sha256")
        )
        lab.start_capture(pcap)
        time.sleep(0.2)
        pluto = Pluto(lab, "cl", out / "pluto", CONN, f'@{INITIATOR_ID} @{RESPONDER_ID} : PSK "{DEFAULT_PSK}"\n')
        try:
            pluto.whack("--name", "c", "--initiate", "--asynchronous")
            deadline = time.monotonic() + 15  # charon: 3 retransmits of QM message 2, then gives up
            while "giving up after" not in charon.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.3)
            lab.stop_capture()
        finally:
            pluto.stop()
    return pcap, out / "lab" / "responder" / "charon.log", pluto.log


def test_quick_mode_stopped_by_pluto_is_named(stalled: tuple[Path, Path, Path]) -> None:
    pcap, charon_log, _ = stalled
    assert "giving up after" in charon_log.read_text(), "charon did not give up on Quick Mode"
    rc, doc, err = analyze_json(pcap, "--keys", str(charon_log))
    assert rc == 1 and doc, err
    f = next(f for f in doc["findings"] if f["severity"] == "error")
    assert f["id"] == "ikev1-exchange-stopped", doc["findings"]
    assert f["data"] == {"phase": "QUICK_MODE", "messages": 2, "missing": 3, "stopped": "initiator"}
    assert "no IPsec SA exists" in f["explanation"]
    [sa] = doc["ike_sas"]
    assert sa["version"] == 1 and sa["state"] == "established"  # Main Mode completed
    assert [c["created_in"] for c in sa["child_sas"]] == ["QUICK_MODE"]


def test_plutos_log_is_a_key_source_without_ike_keys(stalled: tuple[Path, Path, Path]) -> None:
    pcap, charon_log, pluto_log = stalled
    rc, doc, err = analyze_json(pcap, "--keys", str(pluto_log))
    assert rc == 1 and doc, err  # recognised: the analysis goes on (exit 2 only for unreadable files)
    records = doc["keys"]["records"]
    assert records and all(r["kind"] == "esp" for r in records), records  # CHILD SA keymat only
    ids = [f["id"] for f in doc["findings"]]
    assert ids[0] == "ikev1-exchange-stopped" and "keys-unmatched" in ids, ids
    # both logs together: the ESP key pluto logged is one of the CHILD SA's SPIs
    rc, doc, err = analyze_json(pcap, "--keys", str(charon_log), "--keys", str(pluto_log))
    [sa] = doc["ike_sas"]
    spis = {sa["child_sas"][0]["spi_i"], sa["child_sas"][0]["spi_r"]}
    assert {r["spi"] for r in doc["keys"]["records"] if r["kind"] == "esp"} & spis, (doc["keys"], spis)

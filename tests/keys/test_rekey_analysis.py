"""The analysis binds rekeyed IKE SAs' keys as it decrypts the CREATE_CHILD_SA that created them.

strongSwan logs a rekeyed IKE SA's keys without its SPIs (tests/keys/data/README.md): the
reconstruction learns the rekey from the decrypted exchange, the decryptor binds the pending
record (checked by RFC 7296 §2.18 derivation), so every later IKE SA of the chain decrypts.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from ipsecdiag.keys.load import load_key_sources
from ipsecdiag.pipeline import analyze_capture

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("roles", [("initiator",), ("responder",), ("initiator", "responder")])
def test_every_ike_sa_of_three_rekeys_decrypts(tmp_path: Path, roles: tuple[str, ...]) -> None:
    logs = []
    for role in roles:
        log = tmp_path / f"{role}.log"
        log.write_bytes(lzma.decompress((DATA / f"charon-ike-rekeys-{role}.log.xz").read_bytes()))
        logs.append(log)
    loaded = load_key_sources(logs)
    assert len(loaded.store.pending()) == 3 * len(roles)
    report = analyze_capture(DATA / "charon-ike-rekeys.pcap", keys=loaded.store)
    assert len(report.ike_sas) == 4
    for sa in report.ike_sas:
        encrypted = [m for e in sa.exchanges for m in e.all_messages() if m.encrypted]
        assert encrypted and all(m.decrypted for m in encrypted), sa.key
    chain = [sa.key for sa in report.ike_sas]
    assert [sa.rekeyed_from for sa in report.ike_sas] == [None, *chain[:-1]]
    assert chain[-1] == "124a03c4d732e668/4a709cf45f9cf490"  # what swanctl listed at the end
    # Every pending record was bound inside the analysis (the report names none still pending),
    # and the caller's store is untouched: bindings belong to that analysis alone.
    assert [n for n in report.key_notes if n.kind == "pending"] == []
    assert len(loaded.store.pending()) == 3 * len(roles)

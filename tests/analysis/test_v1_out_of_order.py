"""IKEv1 decryption in a capture whose phase 1 comes later in the file than the messages that
depend on it (files merged out of order; review 2, item 4).

The IV of a phase-2 or informational message derives from the last phase-1 CBC block and the
message's own M-ID (RFC 2409 Appendix B), so such a message decrypts once phase 1 has been read:
the decryptor answers "later" and the reconstructor decrypts it again, in time order, at the end
of the capture. Before, it read "the KE payloads of phase 1 are not in the capture" although they
were, the DELETEs were lost and the SA stayed established.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from checks_keyed import LAB, SAMPLES, analyze, needs_v1_decryption
from corpus import needs_corpus

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter


def _swapped(src: Path, first_of_tail: int, out: Path) -> Path:
    """``src`` with frames ``first_of_tail``.. written before frames 1..``first_of_tail - 1``,
    timestamps kept (what mergecap -a of two editcap halves gives)."""
    with open_capture(src) as cap:
        frames = list(cap.frames())
    [linktype] = {lt for _n, _ts, lt, _d, _o in frames}
    head = [f for f in frames if f[0] < first_of_tail]
    tail = [f for f in frames if f[0] >= first_of_tail]
    with PcapWriter(out, linktype, nanosecond=True) as w:
        for _n, ts, _lt, data, orig in tail + head:
            w.write(ts, data, orig)
    return out


def _check(r) -> None:
    [sa] = r.ike_sas
    infos = [m for e in sa.exchanges if e.type == "INFORMATIONAL" for m in e.all_messages()]
    assert len(infos) == 2
    for m in infos:
        assert m.decrypted is True and "D" in m.payloads, (m.first_frame, m.decrypt_error)
    errors = [m.decrypt_error for e in sa.exchanges for m in e.all_messages() if m.decrypt_error]
    assert errors == []
    assert sa.state == "deleted"
    [child] = sa.child_sas
    assert child.deleted_frame in {m.first_frame for m in infos}


@needs_v1_decryption
def test_informationals_before_phase1_in_the_file_decrypt(tmp_path: Path) -> None:
    # sample: Main Mode 1-6, Quick Mode 7-9, ESP, then the two DELETE informationals (30, 31)
    pcap = _swapped(SAMPLES / "ikev1-main-psk.pcap", 30, tmp_path / "swapped.pcap")
    _check(analyze(pcap, SAMPLES / "ikev1-main-psk.charon.log"))


@needs_v1_decryption
def test_in_order_capture_is_unchanged() -> None:
    _check(analyze(SAMPLES / "ikev1-main-psk.pcap", SAMPLES / "ikev1-main-psk.charon.log"))


@needs_corpus
@needs_v1_decryption
def test_lab_capture_halves_swapped(tmp_path: Path) -> None:
    lab = LAB / "ikev1-main-psk-ok"
    if not (lab / "capture.pcap").is_file():
        pytest.skip(f"{lab} not in the corpus")
    pcap = _swapped(lab / "capture.pcap", 31, tmp_path / "swapped.pcap")
    _check(analyze(pcap, lab / "charon-initiator.log"))


@needs_v1_decryption
def test_phase1_really_absent_is_said_at_the_end(tmp_path: Path) -> None:
    """A capture that starts after Main Mode: the messages wait for a phase 1 that never comes,
    and then say what is missing (not "not decrypted yet")."""
    with open_capture(SAMPLES / "ikev1-main-psk.pcap") as cap:
        frames = [f for f in cap.frames() if f[0] >= 7]
    out = tmp_path / "no-phase1.pcap"
    with PcapWriter(out, frames[0][2], nanosecond=True) as w:
        for _n, ts, _lt, data, orig in frames:
            w.write(ts, data, orig)
    r = analyze(out, SAMPLES / "ikev1-main-psk.charon.log")
    msgs = [m for sa in r.ike_sas for e in sa.exchanges for m in e.all_messages() if m.encrypted]
    assert msgs and all(m.decrypted is False for m in msgs)
    errors = [m.decrypt_error or "" for m in msgs]
    assert all("not in the capture" in e and not e.startswith("not decrypted yet") for e in errors), errors


def test_ikev1_ladder_rows_in_time_order() -> None:
    """zeek ipsec.cap: the Informational at +0.042 s sits between Main Mode 2 and the rest of Main
    Mode at +10 s; the ladder shows it there, not after the whole Main Mode exchange."""
    from checks_builders import exchange, ike_sa, msg, v1_notify
    from rich.console import Console

    from ipsecdiag.report.render import Ladder

    mm = [msg(frame=1, ts=0.0, version=1), msg(from_initiator=False, frame=2, ts=0.015, version=1)]
    mm += [msg(from_initiator=i % 2 == 0, frame=5 + i, ts=10.07 + i / 100, version=1) for i in range(4)]
    info = exchange(
        "INFORMATIONAL_V1", 0, None, messages=[msg(payloads=[v1_notify("NO_PROPOSAL_CHOSEN")], frame=3, ts=0.042, version=1)]
    )
    sa = ike_sa(exchange("MAIN_MODE", 0, None, messages=mm), info, version=1)
    console = Console(width=100, record=True)
    console.print(Ladder(sa, 1, 0.0))
    frames = [int(line.split()[0]) for line in console.export_text().splitlines() if line.strip()[:1].isdigit()]
    assert frames == [1, 2, 3, 5, 6, 7, 8]

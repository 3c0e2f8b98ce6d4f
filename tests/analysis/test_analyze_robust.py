"""The whole pipeline (reader, decoder, reconstruction, decryption, checks, renderers) never
raises on damaged input: a malformed packet becomes a finding or a counted skip."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from ipsecdiag.capture.model import CaptureError
from ipsecdiag.decryption.ikev2 import DecryptionSetup
from ipsecdiag.keys.load import load_keys
from ipsecdiag.keys.model import KeyStore
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.report.json import dumps
from ipsecdiag.report.render import report_renderable

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
SOURCES = {
    name: (SAMPLES / f"{name}.pcap").read_bytes()
    for name in ("ikev2-psk-ok", "ikev1-main-psk", "ikev2-cbc-sha256-ok", "ikev2-frag-blackhole")
}
KEYS = {name: KeyStore(load_keys(SAMPLES / f"{name}.charon.log")) for name in SOURCES}


def _records(pcap: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each record's packet data in a classic little-endian pcap."""
    out, p = [], 24
    while p + 16 <= len(pcap):
        incl = struct.unpack_from("<I", pcap, p + 8)[0]
        out.append((p + 16, incl))
        p += 16 + incl
    return out


def _run(tmp: Path, data: bytes, keys: KeyStore) -> None:
    path = tmp / "fuzz.pcap"
    path.write_bytes(data)
    try:
        rep = analyze_capture(path, keys=keys, decryption=DecryptionSetup())
    except CaptureError:
        return  # the file header itself is broken: exit 2 with a message
    dumps([rep])
    Console(file=io.StringIO(), width=80).print(report_renderable(rep))
    s = rep.source
    assert s.ipsec_frames + sum(s.skipped.values()) == s.frames


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(SOURCES)),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(25, 20000)),
)
def test_mutated_packets_never_crash(
    tmp_path: Path, name: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SOURCES[name])
    recs = _records(bytes(data))
    for where, value in flips:
        off, length = recs[where % len(recs)]
        if length:
            data[off + (where // len(recs)) % length] = value
    if cut is not None:
        data = data[: min(cut, len(data))]
    _run(tmp_path, bytes(data), KEYS[name])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SOURCES)), seed=st.integers(0, 2**32 - 1))
def test_shuffled_and_duplicated_records_never_crash(tmp_path: Path, name: str, seed: int) -> None:
    import random

    rng = random.Random(seed)
    data = SOURCES[name]
    recs = [(data[o - 16 : o + n]) for o, n in _records(data)]
    picked = [rng.choice(recs) for _ in range(len(recs))]
    _run(tmp_path, data[:24] + b"".join(picked), KEYS[name])

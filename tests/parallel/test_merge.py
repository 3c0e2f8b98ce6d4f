"""One capture in byte ranges (parallel.analyze_split / analyze_ranges, reconstruction/merge.py):
the report equals the serial one (JSON, findings included) on every bundled sample, every corpus
capture (with its keys where it has them) and generated captures with anomalies placed exactly
at the cuts; where the merge cannot be exact it must say so and analyse serially (issue 12)."""

from __future__ import annotations

import json
import lzma
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.split import ByteRange, split_capture
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.esp.sa import EspEncryptor
from ipsecdiag.keys.model import ChildSaKeys, KeyStore, SecretBytes
from ipsecdiag.parallel import SPLIT_STATS, analyze_ranges, analyze_split, map_in_order
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction import merge, range_scan
from ipsecdiag.reconstruction.options import AnalysisOptions
from ipsecdiag.report.json import dumps
from ipsecdiag.wire.registry import EncrId
from tests.corpus import CORPUS, REPO_ROOT

SAMPLES = sorted((REPO_ROOT / "sample_pcaps").rglob("*.pcap*"))
CORPUS_FILES = (
    sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap")) if CORPUS.is_dir() else []
)
KEYED = REPO_ROOT / "tests" / "keys" / "data"
# With the per-flow packet histograms (analyze --html): every comparison covers their merge too.
OPTIONS = AnalysisOptions(esp_timeline=True)
A, B, C = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2]), bytes([203, 0, 113, 9])


def serial_json(path: Path, keys: KeyStore | None = None) -> str:
    return dumps([analyze_capture(path, keys=keys, options=OPTIONS)])


def in_process(fn, shared, items, jobs):  # type: ignore[no-untyped-def]
    """A mapper without processes (map_in_order's shape): the merge is the same."""
    return [fn(shared, x) for x in items]


def split_json(
    path: Path, parts: int, keys: KeyStore | None = None, min_bytes: int = 256, *, forked: bool = True
) -> str:
    mapper = None if forked else in_process
    return dumps([analyze_split(path, parts, keys=keys, options=OPTIONS, min_bytes=min_bytes, mapper=mapper)])


def in_one_pass(fn: object) -> tuple[str, bool]:
    """(result, whether it fell back to the serial analysis)."""
    before = SPLIT_STATS.fallbacks
    out = fn()  # type: ignore[operator]
    return out, SPLIT_STATS.fallbacks > before


# -- bundled samples and the corpus --------------------------------------------------------
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_split_equal_serial(path: Path) -> None:
    want = serial_json(path)
    for parts in (2, 5):
        assert split_json(path, parts) == want


@pytest.mark.skipif(not CORPUS_FILES, reason=f"shared corpus {CORPUS} not present (set IPSECDIAG_CORPUS)")
def test_corpus_split_equals_serial() -> None:
    for path in CORPUS_FILES:
        want = serial_json(path)
        assert split_json(path, 2) == want, path
        assert split_json(path, 4, forked=False) == want, path


def _lab_keys() -> Iterator[tuple[Path, KeyStore]]:
    from ipsecdiag.cli import _load_keys

    for d in sorted((CORPUS / "lab").iterdir()):
        if (d / "keys.json").exists():
            store = _load_keys([d / "keys.json"])
            for cap in sorted(d.glob("*.pcap")):
                yield cap, store


@pytest.mark.skipif(not (CORPUS / "lab").is_dir(), reason=f"shared corpus {CORPUS}/lab not present")
def test_corpus_with_keys_split_equals_serial() -> None:
    decrypted = 0
    for cap, store in _lab_keys():
        want = serial_json(cap, store)
        decrypted += '"decrypted": true' in want
        for parts in (2, 5):
            assert split_json(cap, parts, store) == want, cap
    assert decrypted  # the keys were used in the workers


@pytest.mark.skipif(not KEYED.is_dir(), reason="keyed test captures not present")
def test_keyed_captures_split_equal_serial(tmp_path: Path) -> None:
    from ipsecdiag.cli import _load_keys

    for cap in sorted(KEYED.glob("*.pcap")):
        logs = []
        for xz in sorted(KEYED.glob(cap.stem + "*.log.xz")):
            plain = tmp_path / xz.name.removesuffix(".xz")
            plain.write_bytes(lzma.decompress(xz.read_bytes()))
            logs.append(plain)
        store = _load_keys(logs) if logs else None
        want = serial_json(cap, store)
        assert split_json(cap, 3, store, min_bytes=4096) == want, cap


# -- generated captures with anomalies at the cut ------------------------------------------
def eth_ip(src: bytes, dst: bytes, proto: int, payload: bytes, *, ident: int = 0, frag: int = 0) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, src, dst)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + hdr + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def esp(spi: int, seq: int, body: bytes = b"") -> bytes:
    return struct.pack("!II", spi, seq & 0xFFFFFFFF) + (body or struct.pack("!QQ", seq, spi) * 3)


class Capture:
    """Frames in order; ``cut()`` remembers the record offset before the next frame."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.w = PcapWriter(path, 1)
        self.pos = 24
        self.cuts: list[int] = []
        self.ts = 1_700_000_000.0

    def add(self, data: bytes, dt: float = 0.001) -> None:
        self.ts += dt
        self.w.write(self.ts, data)
        self.pos += 16 + len(data)

    def esp(self, spi: int, seq: int, src: bytes = A, dst: bytes = B, udp_encap: bool = False, dt: float = 0.001) -> None:
        p = esp(spi, seq)
        self.add(eth_ip(src, dst, 17, udp(4500, 4500, p)) if udp_encap else eth_ip(src, dst, 50, p), dt)

    def cut(self) -> None:
        self.cuts.append(self.pos)

    def ranges(self) -> list[ByteRange]:
        self.w.close()
        header = self.path.read_bytes()[:24]
        edges = [24, *self.cuts, self.path.stat().st_size]
        return [ByteRange(i, edges[i], edges[i + 1], header) for i in range(len(edges) - 1)]


def check(cap: Capture, keys: KeyStore | None = None, *, merged: bool | None = None) -> None:
    ranges = cap.ranges()
    assert len(ranges) >= 2
    want = serial_json(cap.path, keys)
    got, fell_back = in_one_pass(
        lambda: dumps([analyze_ranges(cap.path, ranges, options=OPTIONS, keys=keys, mapper=map_in_order, jobs=2)])
    )
    assert got == want
    if merged is not None:
        assert fell_back != merged, SPLIT_STATS.last_reason


def run_of(cap: Capture, spi: int, seqs: range | list[int], **kw: object) -> None:
    for s in seqs:
        cap.esp(spi, s, **kw)  # type: ignore[arg-type]


def test_clean_flows_gap_and_idle_at_the_cut_merge(tmp_path: Path) -> None:
    cap = Capture(tmp_path / "clean.pcap")
    for s in range(1, 300):
        cap.esp(0x100, s)
        cap.esp(0x200, s, B, A, udp_encap=True)
    cap.cut()
    cap.esp(0x100, 310, dt=90.0)  # a gap and an idle period exactly at the cut
    run_of(cap, 0x100, range(311, 400))
    run_of(cap, 0x200, range(300, 400), src=B, dst=A, udp_encap=True)
    cap.cut()
    run_of(cap, 0x300, range(1, 50))  # a flow that starts in the last range
    run_of(cap, 0x100, range(400, 450))
    check(cap, merged=True)


def test_anomalies_inside_ranges_merge(tmp_path: Path) -> None:
    cap = Capture(tmp_path / "inside.pcap")
    run_of(cap, 0x100, range(1, 200))
    cap.cut()
    run_of(cap, 0x100, [200, 201, 205, 203, 202, 204, 206, 206, 207])  # reorder + replay after the cut
    run_of(cap, 0x100, range(208, 300))
    run_of(cap, 0x100, [230, 150])  # a late replay and one too old for the window, above the cut
    cap.cut()
    run_of(cap, 0x100, range(300, 320))
    check(cap, merged=True)  # 150 is below the cut: the flow's packets are replayed (cut_replay)
    cap2 = Capture(tmp_path / "inside2.pcap")
    run_of(cap2, 0x100, range(1, 200))
    cap2.cut()
    run_of(cap2, 0x100, [200, 201, 205, 203, 202, 204, 206, 206, 207])
    run_of(cap2, 0x100, range(208, 300))
    run_of(cap2, 0x100, [230, 290])
    cap2.cut()
    run_of(cap2, 0x100, range(300, 320))
    check(cap2, merged=True)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (range(1, 101), [99, *range(101, 150)]),  # reordered across the cut
        (range(1, 101), [100, *range(101, 150)]),  # replayed across the cut
        (range(1, 101), [50, *range(101, 150)]),  # too old for the window, across the cut
        (range(1, 101), [1, 2, *range(3, 50)]),  # sequence reset after the cut
        (range(0xFFFFFF00, 0xFFFFFFFF + 1), range(0, 60)),  # ESN wrap at the cut
        (range(0xFFFFFF00, 0xFFFFFFF0), [*range(0xFFFFFFF0, 0xFFFFFFFF + 1), *range(0, 60)]),  # wrap after it
    ],
)
def test_sequence_anomalies_straddling_the_cut(tmp_path: Path, before: range, after: list[int]) -> None:
    cap = Capture(tmp_path / "straddle.pcap")
    run_of(cap, 0x100, before)
    cap.cut()
    run_of(cap, 0x100, after)
    check(cap, merged=True)  # joined directly or after replaying the first packets
    # The same after the worker's snapshot: a long range, the anomaly at its start.
    cap = Capture(tmp_path / "straddle-long.pcap")
    run_of(cap, 0x100, before)
    cap.cut()
    run_of(cap, 0x100, after)
    last = after[-1]
    run_of(cap, 0x100, range(last + 1, last + 600))
    run_of(cap, 0x200, range(1, 50))
    check(cap, merged=True)


def test_capture_duplicate_across_the_cut_is_replayed(tmp_path: Path) -> None:
    cap = Capture(tmp_path / "dup.pcap")
    run_of(cap, 0x100, range(1, 50))
    cap.cut()
    cap.esp(0x100, 49, dt=0.0001)  # byte-identical copy: its original is before the cut
    run_of(cap, 0x100, range(50, 90))
    check(cap, merged=True)  # the replay holds the packets before the cut (the dup ring)


def test_ike_and_keepalives_across_the_cut_merge(tmp_path: Path) -> None:
    cap = Capture(tmp_path / "ike.pcap")
    with open_capture(REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap") as src:
        ike = [f[3] for f in src.frames()]
    run_of(cap, 0x100, range(1, 40))
    for i, frame in enumerate(ike):
        if i == len(ike) // 2:
            cap.cut()  # the exchange straddles the cut
        cap.add(frame)
        cap.esp(0x100, 40 + i)
    cap.add(eth_ip(A, B, 17, udp(4500, 4500, b"\xff")))  # NAT-T keepalive
    run_of(cap, 0x100, range(40 + len(ike), 100))
    check(cap, merged=True)


def test_ip_fragments_across_and_inside_ranges(tmp_path: Path) -> None:
    big = esp(0x100, 41, bytes(range(256)) * 6)
    first, second = big[:800], big[800:]
    cap = Capture(tmp_path / "frag-inside.pcap")
    run_of(cap, 0x100, range(1, 40))
    cap.cut()
    cap.esp(0x100, 40)
    cap.add(eth_ip(A, B, 50, first, ident=7, frag=0x2000))  # ESP in two fragments, inside range 1
    cap.add(eth_ip(A, B, 50, second, ident=7, frag=100))
    run_of(cap, 0x100, range(42, 80))
    check(cap, merged=True)
    cap = Capture(tmp_path / "frag-across.pcap")
    run_of(cap, 0x100, range(1, 41))
    cap.add(eth_ip(A, B, 50, first, ident=7, frag=0x2000))
    cap.cut()  # the datagram is completed after the cut: only the serial decode sees it
    cap.add(eth_ip(A, B, 50, second, ident=7, frag=100))
    run_of(cap, 0x100, range(42, 80))
    check(cap, merged=False)
    cap = Capture(tmp_path / "frag-expiry.pcap")
    cap.add(eth_ip(A, C, 17, first, ident=9, frag=0x2000))  # never completed: expires on ESP frames' time
    run_of(cap, 0x100, range(1, 41))
    cap.cut()
    run_of(cap, 0x100, range(41, 60), dt=2.0)
    cap.add(eth_ip(A, C, 17, udp(500, 500, bytes(40))))
    check(cap, merged=True)


# -- keyed: ESP decrypted in the workers ----------------------------------------------------
GCM_KEY = bytes(range(20))


def gcm_keys(spi: int, esn: bool | None = False) -> ChildSaKeys:
    return ChildSaKeys(spi=spi, encr=EncrId.ENCR_AES_GCM_16, encr_key=SecretBytes(GCM_KEY), encr_key_bits=128, esn=esn)


def inner(seq: int) -> bytes:
    body = udp(1000, 2000, struct.pack("!Q", seq) * 8)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, 17, 0, C, C) + body


@pytest.mark.parametrize("esn", [False, None, True])
def test_keyed_flows_with_bad_icvs_across_the_cut(tmp_path: Path, esn: bool | None) -> None:
    keys = gcm_keys(0x500, esn)
    enc = EspEncryptor(gcm_keys(0x500, bool(esn)), DeterministicRandom("merge").bytes)
    cap = Capture(tmp_path / f"gcm-{esn}.pcap")
    start = 0xFFFFFF80 if esn else 1
    for n in range(200):
        if n == 100:
            cap.cut()
        pkt = bytearray(enc.encrypt(inner(n), 4, seq=start + n))
        if n in (99, 100, 150):
            pkt[-1] ^= 1  # bad ICV on both sides of the cut
        cap.add(eth_ip(A, B, 50, bytes(pkt)))
    store = KeyStore([keys])
    cap.w.close()
    want = serial_json(cap.path, store)
    assert '"integrity_failed": 3' in want
    (flow,) = json.loads(want)["esp_flows"]
    assert len(flow["integrity_failed_times"]) == 3 and sum(flow["timeline"]["packets"]) == 200
    check(cap, store, merged=not esn)  # ESN state carried across a cut is not joined: serial


def test_flow_cap_overflow_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ipsecdiag.reconstruction.esp_tracker.MAX_FLOWS", 5)
    cap = Capture(tmp_path / "many.pcap")
    for spi in range(1, 5):
        cap.esp(spi, 1)
    cap.cut()
    for spi in range(3, 9):
        cap.esp(spi, 2)
    ranges = cap.ranges()
    want = serial_json(cap.path)
    got, fell_back = in_one_pass(lambda: dumps([analyze_ranges(cap.path, ranges, options=OPTIONS, jobs=1)]))
    assert got == want and fell_back


def test_split_sizes_are_honoured(tmp_path: Path) -> None:
    cap = Capture(tmp_path / "sizes.pcap")
    run_of(cap, 0x100, range(1, 2000))
    cap.w.close()
    assert len(split_capture(cap.path, 4, min_bytes=4096)) == 4
    assert split_json(cap.path, 4, min_bytes=4096) == serial_json(cap.path)


def test_failed_frames_cap_matches_the_decryptor() -> None:
    from ipsecdiag.decryption.esp import MAX_FAILED_FRAMES

    assert merge.MAX_FAILED_FRAMES == MAX_FAILED_FRAMES


def test_other_traffic_is_counted_in_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cap = Capture(tmp_path / "mixed.pcap")
    for s in range(1, 300):
        if s == 150:
            cap.cut()
        cap.esp(0x100, s)
        cap.add(eth_ip(A, C, 17, udp(53, 5353, bytes(30))))  # not IPsec: skipped, counted where read
        cap.add(b"\xff" * 12 + b"\x08\x06" + bytes(28))  # ARP
        cap.add(eth_ip(A, C, 6, bytes(40)))  # TCP on no NAT-T port
    check(cap, merged=True)
    monkeypatch.setattr(range_scan, "MAX_FORWARD_BYTES", 2000)
    cap = Capture(tmp_path / "ike-heavy.pcap")
    for s in range(1, 100):
        if s == 50:
            cap.cut()
        cap.esp(0x100, s)
        cap.add(eth_ip(A, B, 17, udp(500, 500, bytes(100))))  # malformed IKE: handed back
    check(cap, merged=False)  # too much for the main pass to hold: one serial pass


def test_cli_jobs_splits_one_capture(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from ipsecdiag.cli import run_analysis

    sample = REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap"
    monkeypatch.setenv("IPSECDIAG_RANGE_BYTES", "1024")
    monkeypatch.setenv("IPSECDIAG_DEBUG", "1")
    serial = run_analysis([sample], None, OPTIONS, jobs=1, progress=False)
    split = run_analysis([sample], None, OPTIONS, jobs=3, progress=False)
    assert dumps(split) == dumps(serial)
    assert "byte ranges joined exactly" in capfd.readouterr().err


def _random_capture(path: Path, rng: random.Random, longest: int = 1500) -> Capture:
    """Several flows, cuts at random frames, anomalies of every kind near the cuts."""
    cap = Capture(path)
    flows = {spi: rng.choice([1, 1000, 0xFFFFFE00]) for spi in range(0x100, 0x100 + rng.randint(1, 3))}
    sent: dict[int, list[int]] = {spi: [] for spi in flows}
    n = rng.randint(300, longest)
    cuts = set(rng.sample(range(20, n - 20), rng.randint(1, 4)))
    for i in range(n):
        if i in cuts:
            cap.cut()
        spi = rng.choice(list(flows))
        near = any(abs(i - c) < 12 for c in cuts)
        kind = rng.choice(["next"] * 6 + ["gap", "back", "dup", "old", "reset", "copy"]) if near else "next"
        seq = flows[spi]
        if kind == "gap":
            seq += rng.randint(2, 40)
        elif kind == "back" and sent[spi]:
            seq = sent[spi][-rng.randint(1, min(8, len(sent[spi])))] - 1
        elif kind in ("dup", "copy") and sent[spi]:
            seq = rng.choice(sent[spi][-20:])
        elif kind == "old" and sent[spi]:
            seq = rng.choice(sent[spi][:50])
        elif kind == "reset":
            seq = 1
        if kind not in ("back", "dup", "old", "copy"):
            flows[spi] = seq + 1
        seq &= 0xFFFFFFFF
        body = struct.pack("!QQ", seq, spi) * 3 if kind != "dup" else struct.pack("!QQ", seq, i) * 3
        cap.add(eth_ip(A, B, 50, struct.pack("!II", spi, seq) + body), dt=rng.choice([0.001, 0.001, 0.0001, 40.0]))
        sent[spi].append(seq)
    return cap


def test_random_anomalies_at_random_cuts(tmp_path: Path) -> None:
    merged = 0
    for seed in [*range(40), 288, 771]:  # 288, 771: a wrap and a reset before a snapshot, once wrong
        cap = _random_capture(tmp_path / f"r{seed}.pcap", random.Random(seed))
        ranges = cap.ranges()
        want = serial_json(cap.path)
        before = SPLIT_STATS.fallbacks
        got = dumps([analyze_ranges(cap.path, ranges, options=OPTIONS, mapper=in_process, jobs=1)])
        fell_back = SPLIT_STATS.fallbacks > before
        assert got == want, seed
        merged += not fell_back
    assert merged >= 20  # most cuts are joined, directly or by replaying their first packets


def test_keyed_flow_reordered_across_the_cut_is_replayed(tmp_path: Path) -> None:
    keys = gcm_keys(0x600, None)
    enc = EspEncryptor(gcm_keys(0x600, False), DeterministicRandom("reorder").bytes)
    packets = [enc.encrypt(inner(n), 4, seq=n + 1) for n in range(400)]
    packets[99], packets[100] = packets[100], packets[99]  # seq 100 before the cut, 101 after
    packets[150] = packets[150][:-1] + bytes([packets[150][-1] ^ 1])  # and a bad ICV
    cap = Capture(tmp_path / "gcm-reorder.pcap")
    for n, pkt in enumerate(packets):
        if n == 100:
            cap.cut()
        cap.add(eth_ip(A, B, 50, pkt))
        if n == 120:
            cap.add(eth_ip(A, B, 50, packets[30]))  # a replay of a packet from before the cut
    store = KeyStore([keys])
    cap.w.close()
    assert '"integrity_failed": 1' in serial_json(cap.path, store)
    check(cap, store, merged=True)  # decrypted in the workers, the sequence replayed in the main process


def test_time_steps_back_and_gaps_across_long_ranges(tmp_path: Path) -> None:
    rng = random.Random(7)
    cap = Capture(tmp_path / "times.pcap")
    for i in range(1, 4500):
        if i in (1500, 3000):
            cap.cut()
        kind = rng.choice(["on"] * 40 + ["late", "jitter", "gap"])
        if kind == "gap":
            cap.ts += 20.0
        back = {"late": 0.5, "jitter": 0.004}.get(kind, 0.0)  # stamped earlier, the clock goes on
        cap.ts -= back
        cap.esp(0x100, i)
        cap.ts += back
    check(cap, merged=True)  # equal, the time-order record included (capture/timesteps.py)


def test_step_back_at_a_cut_is_judged_against_the_frame_with_the_latest_time(tmp_path: Path) -> None:
    """A range whose last frames stepped back hands on its latest time with the frame that had
    it (not its last frame): the step back that opens the next range names that frame."""
    cap = Capture(tmp_path / "cut-back.pcap")
    for i in range(1, 3000):
        if i == 1500:
            cap.cut()
        back = 2.0 if i in (1498, 1499, 1500) else 0.0  # stamped earlier, the clock goes on
        cap.ts -= back
        cap.esp(0x100, i)
        cap.ts += back
    check(cap, merged=True)
    (health,) = [f for f in json.loads(serial_json(cap.path))["findings"] if f["id"] == "capture-health"]
    assert health["frames"] == [1497, 1498, 1499, 1500]  # the frame with the latest time, and the late ones

"""``decrypt -o --jobs``: byte ranges decrypted in forked workers give the serial output file,
byte for byte, and the same per-SPI summary: on the bundled samples, on the corpus captures
with keys, and on generated captures whose cuts fall inside ESN wraps, replays, gaps,
reordering, bad ICVs and IP fragments."""

from __future__ import annotations

import itertools
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import CORPUS

from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.esp.sa import EspEncryptor
from ipsecdiag.keys.load import load_keys
from ipsecdiag.keys.model import ChildSaKeys, KeyStore, SecretBytes
from ipsecdiag.keys.wireshark import format_esp_sa
from ipsecdiag.report import pcap_jobs
from ipsecdiag.report.pcap import export_decrypted
from ipsecdiag.report.pcap_jobs import export_decrypted_jobs
from ipsecdiag.wire.registry import EncrId, IntegId

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pcaps"
EXT = CORPUS / "external"

SAMPLE_CASES = [
    (SAMPLES / "ikev2-psk-ok.pcap", SAMPLES / "ikev2-psk-ok.charon.log"),
    (SAMPLES / "ikev2-cbc-sha256-ok.pcap", SAMPLES / "ikev2-cbc-sha256-ok.charon.log"),
]
CORPUS_CASES = [
    (EXT / f"wireshark-wiki/{d}/{c}", EXT / f"wireshark-wiki/{d}/{k}")
    for d, c, k in (
        ("ipsec_esp_capture_1", "capture.pcap", "esp_sa"),
        ("ipsec_esp_capture_2", "capture.pcap", "esp_sa"),  # nested ESP
        ("ipsec_esp_capture_3", "capture.pcap", "esp_sa"),
        ("ipsec_esp_capture_5", "capture.pcap", "esp_sa"),
        ("ipsec_ikev2_esp_natt", "capture.pcapng", "esp_sa"),
        ("ipsec_ikev2_esp_natt", "capture.pcapng", "esp_sa.no_icv"),
    )
]


def _summary(s) -> tuple:
    per = {k: (c.packets, c.decrypted, c.written, dict(c.failed)) for k, c in s.per_spi.items()}
    return per, s.written, s.kept


def _same_as_serial(
    tmp_path: Path, cap: Path, store: KeyStore, suffix: str, *, keep: bool = False, parts: int = 9
) -> pcap_jobs.ExportSummary:
    serial = tmp_path / f"serial{suffix}"
    ranged = tmp_path / f"ranged{suffix}"
    s1 = export_decrypted(cap, store, serial, keep_undecrypted=keep, allow_pool=False)
    s2 = export_decrypted_jobs(
        cap, store, ranged, jobs=2, keep_undecrypted=keep, parts=parts, min_range_bytes=256
    )
    assert ranged.read_bytes() == serial.read_bytes()
    assert _summary(s2) == _summary(s1)
    assert not [p for p in tmp_path.iterdir() if ".range" in p.name]  # part files removed
    return s2


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
@pytest.mark.parametrize("cap,keys", SAMPLE_CASES, ids=[c.name for c, _ in SAMPLE_CASES])
def test_samples(tmp_path: Path, cap: Path, keys: Path, suffix: str) -> None:
    s = _same_as_serial(tmp_path, cap, KeyStore(load_keys(keys)), suffix)
    assert s.ranges > 1 and s.written > 0


@pytest.mark.parametrize("cap,keys", CORPUS_CASES, ids=[f"{c.parent.name}-{k.name}" for c, k in CORPUS_CASES])
def test_corpus(tmp_path: Path, cap: Path, keys: Path) -> None:
    if not cap.exists() or not keys.exists():
        pytest.skip(f"corpus capture {cap} or its keys not present (set IPSECDIAG_CORPUS)")
    store = KeyStore(load_keys(keys))
    for suffix, keep in ((".pcap", False), (".pcap", True), (".pcapng", False)):
        _same_as_serial(tmp_path, cap, store, suffix, keep=keep, parts=6)


# -- generated captures ----------------------------------------------------------------------
A, B, C = "10.0.0.1", "10.0.0.2", "192.0.2.7"
ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"


def _keys(spi: int, encr: int, integ: int, esn: bool | None, src: str, dst: str) -> ChildSaKeys:
    n = 20 if encr == EncrId.ENCR_AES_GCM_16 else 16
    ek = bytes((spi + i * 7) & 0xFF for i in range(n))
    ik = bytes((spi + i * 11) & 0xFF for i in range(32)) if integ else b""
    return ChildSaKeys(
        spi=spi, encr=encr, encr_key=SecretBytes(ek), integ=integ, integ_key=SecretBytes(ik),
        encr_key_bits=128, esn=esn, src=src, dst=dst,
    )  # fmt: skip


def _ip4(src: str, dst: str, proto: int, payload: bytes, ident: int, frag: int) -> bytes:
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
        bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))),
    )  # fmt: skip
    return hdr + payload


def _generated(path: Path, *, fragments: bool) -> KeyStore:
    """Three SAs over 3000 packets: GCM with ESN inferred (keys silent) wrapping 2^32 midway,
    CBC+HMAC in UDP 4500 without ESN, GCM with ESN declared; replays, gaps, swaps, bad ICVs;
    with ``fragments``, every 7th GCM packet goes as two IP fragments five frames apart."""
    sas = [
        (_keys(0x1001, EncrId.ENCR_AES_GCM_16, 0, True, A, B), None, (1 << 32) - 900, False),
        (_keys(0x2002, EncrId.ENCR_AES_CBC, IntegId.AUTH_HMAC_SHA2_256_128, False, B, A), False, 1, True),
        (_keys(0x3003, EncrId.ENCR_AES_GCM_16, 0, True, A, C), True, 5, False),
    ]
    store = KeyStore([replace_esn(k, esn) for k, esn, _, _ in sas])
    ivs = itertools.count(1)
    encs = [EspEncryptor(k, lambda n: next(ivs).to_bytes(n, "big")) for k, _, _, _ in sas]
    seqs = [s for _, _, s, _ in sas]
    frames: list[bytes] = []
    held: list[tuple[int, bytes]] = []  # (frame index to send at, frame)
    sent: list[bytes] = []
    for i in range(3000):
        j = i % 3
        k, _, _, udp = sas[j]
        inner = _ip4("172.16.0.1", "172.16.0.2", 17, struct.pack("!HHHH", 1000, 2000, 8 + i % 300, 0) + bytes(i % 300), i & 0xFFFF, 0)
        esp = bytearray(encs[j].encrypt(inner, 4, seq=seqs[j]))
        seqs[j] += 1 if i % 97 else 40  # gaps
        if i % 113 == 5:
            esp[-3] ^= 0x55  # bad ICV
        body = struct.pack("!HHHH", 4500, 4500, 8 + len(esp), 0) + bytes(esp) if udp else bytes(esp)
        proto = 17 if udp else 50
        if fragments and j == 0 and i % 7 == 0:
            dgram = _ip4(k.src, k.dst, proto, body, i & 0xFFFF, 0)[20:]
            cut = (len(dgram) // 2) & ~7
            frames.append(ETH + _ip4(k.src, k.dst, proto, dgram[:cut], i & 0xFFFF, 0x2000))
            held.append((len(frames) + 5, ETH + _ip4(k.src, k.dst, proto, dgram[cut:], i & 0xFFFF, cut // 8)))
        else:
            frames.append(ETH + _ip4(k.src, k.dst, proto, body, i & 0xFFFF, 0x4000))
        while held and held[0][0] <= len(frames):
            frames.append(held.pop(0)[1])
        sent.append(frames[-1])
        if i % 131 == 17 and len(sent) > 40:
            frames.append(sent[-40])  # a replay of an older packet
        if i % 89 == 3 and len(frames) > 2:
            frames[-1], frames[-2] = frames[-2], frames[-1]  # reordering
    frames += [f for _, f in held]
    with PcapWriter(path, 1) as w:
        for n, f in enumerate(frames):
            w.write(1_700_000_000 + n * 0.001, f)
    return store


def replace_esn(k: ChildSaKeys, esn: bool | None) -> ChildSaKeys:
    from dataclasses import replace

    return replace(k, esn=esn)


@pytest.mark.parametrize("prefix", [pcap_jobs.PREFIX, 0])
def test_generated_esn_and_anomalies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: int) -> None:
    cap = tmp_path / "gen.pcap"
    store = _generated(cap, fragments=False)
    # prefix 0: no recorded packets, so every range that continues an SA is decrypted again
    # from the carried state (the path taken when the replay does not meet the true state).
    monkeypatch.setattr(pcap_jobs, "PREFIX", prefix)
    for suffix, keep in ((".pcap", False), (".pcap", True), (".pcapng", False)):
        s = _same_as_serial(tmp_path, cap, store, suffix, keep=keep, parts=12)
        assert s.serial_reason is None and s.ranges >= 10
        assert (s.ranges_redone > 0) == (prefix == 0)
    flows = {k[0]: c for k, c in s.per_spi.items()}
    assert flows[0x1001].decrypted > 900 and flows[0x1001].failed  # the wrap decrypted, bad ICVs counted


def test_fragments_across_a_cut_fall_back_to_serial(tmp_path: Path) -> None:
    cap = tmp_path / "frag.pcap"
    store = _generated(cap, fragments=True)
    s = _same_as_serial(tmp_path, cap, store, ".pcap", parts=16)
    assert s.serial_reason is not None and "fragment" in s.serial_reason


def test_progress_counts_the_workers_reads_and_ends_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ipsecdiag.capture import split

    cap = tmp_path / "gen.pcap"
    store = _generated(cap, fragments=False)
    # a worker counts what its range stream reads: all of its range by the end
    rng = split.split_capture(cap, 4, min_bytes=256)[1]
    monkeypatch.setattr(split, "read_counter", [0] * 4)
    shared = pcap_jobs._Shared(str(cap), store, pcap_jobs.DEFAULT_OPTIONS, False, False, ["", str(tmp_path / "p1")])
    pcap_jobs.decrypt_range(shared, rng)
    assert split.read_counter[1] == rng.end - rng.start
    monkeypatch.undo()
    # the bar's last word is 100 %, also when every range finished before the first tick
    calls: list[tuple[int, int]] = []
    out = tmp_path / "out.pcap"
    export_decrypted_jobs(cap, store, out, jobs=2, parts=6, min_range_bytes=256, progress=lambda d, t: calls.append((d, t)))
    total = os.path.getsize(cap) - 24
    assert calls and calls[-1] == (total, total)
    assert all(t == total and 0 <= d <= total for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert split.read_counter is None  # not left set for a later pass
    serial = tmp_path / "serial.pcap"
    export_decrypted(cap, store, serial, allow_pool=False)
    assert out.read_bytes() == serial.read_bytes()


@pytest.mark.parametrize("kernel", [True, False], ids=["copy_file_range", "user-space"])
def test_parts_appended_in_the_kernel_or_through_user_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    cap = tmp_path / "gen.pcap"
    store = _generated(cap, fragments=False)
    copied: list[int] = []
    real = os.copy_file_range

    def copy_file_range(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        if not kernel:
            raise OSError(18, "Invalid cross-device link")
        n = real(src, dst, count, offset_src, offset_dst)
        copied.append(n)
        return n

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    s = _same_as_serial(tmp_path, cap, store, ".pcap", parts=5)
    assert s.ranges == 5
    # every part but the first goes through the kernel (an O_APPEND output would refuse it)
    assert (len(copied) >= 4 and sum(copied) > 0) if kernel else not copied


def test_cli_jobs(tmp_path: Path) -> None:
    cap = tmp_path / "gen.pcap"
    store = _generated(cap, fragments=False)
    keys = tmp_path / "esp_sa"
    lines, _notes = format_esp_sa([k for k in store if isinstance(k, ChildSaKeys)], esn_layout=True)
    keys.write_text("\n".join(lines) + "\n")
    outs = []
    env = {**os.environ, "IPSECDIAG_RANGE_BYTES": "65536"}  # ranges of a small capture
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}.pcap"
        r = subprocess.run(
            [sys.executable, "-m", "ipsecdiag", "decrypt", str(cap), "-k", str(keys), "-o", str(out), "--jobs", jobs],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(os.stat(out).st_mode) & 0o077 == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["esp_sa", "gen.pcap", "out1.pcap", "out2.pcap"]
    r = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "decrypt", str(cap), "-k", str(keys), "-o", str(cap), "--jobs", "2"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 2 and "input" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "decrypt", str(cap), "-k", str(keys), "-o", str(tmp_path / "x.pcap"), "--jobs", "0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 2 and "--jobs 0" in r.stderr

"""bench/gen_esp.py: deterministic ESP captures that our decoder and tshark agree on."""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from capture_helpers import RecordingSink

from ipsecdiag.capture.decode import Decoder
from ipsecdiag.capture.reader import open_capture

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_esp", REPO / "bench" / "gen_esp.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_esp"] = mod
    spec.loader.exec_module(mod)
    return mod


gen_esp = _load()


def decode(path: Path) -> tuple[Decoder, RecordingSink]:
    sink = RecordingSink()
    dec = Decoder(sink)
    with open_capture(path) as cap:
        for fr in cap.frames():
            dec.feed(*fr)
    dec.finish()
    return dec, sink


@pytest.mark.parametrize("cipher", ["none", "aes-gcm-128", "aes-cbc-sha256"])
def test_generated_capture_decodes(tmp_path: Path, cipher: str) -> None:
    out = tmp_path / "esp.pcap"
    summary = gen_esp.generate(
        out, 400, sas=4, encap_ratio=0.5, cipher=cipher, seed=3, keys_out=tmp_path / "k"
    )
    dec, sink = decode(out)
    assert dec.ipsec_frames == 400 and not dec.skipped
    by_spi = {sa.spi: sa for sa in summary.sas}
    assert sum(sa.packets for sa in summary.sas) == 400
    seqs: dict[int, list[int]] = {}
    for e in sink.esp:
        spi, seq = struct.unpack_from("!II", e.esp)
        sa = by_spi[spi]
        assert (e.sport, e.dport) == ((4500, 4500) if sa.encap else (0, 0))
        seqs.setdefault(spi, []).append(seq)
    for spi, got in seqs.items():
        assert got == list(range(1, by_spi[spi].packets + 1))
    assert [sa.encap for sa in summary.sas] == [True, True, False, False]
    sizes = [len(e.esp) for e in sink.esp]
    assert 400 < sum(sizes) / len(sizes) < 1000
    lines = (tmp_path / "k").read_text().splitlines()
    assert len(lines) == 4 and all(line.startswith('"IPv4","10.') for line in lines)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    gen_esp.generate(a, 50, cipher="aes-gcm-128", seed=9)
    gen_esp.generate(b, 50, cipher="aes-gcm-128", seed=9)
    assert a.read_bytes() == b.read_bytes()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        gen_esp.generate(tmp_path / "x.pcap", 1, cipher="des")
    with pytest.raises(ValueError):
        gen_esp.generate(tmp_path / "x.pcap", 1, sas=0)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed: no decryption oracle")
@pytest.mark.parametrize("cipher", ["aes-gcm-128", "aes-cbc-sha256"])
def test_tshark_decrypts_with_the_written_keys(tmp_path: Path, cipher: str) -> None:
    out = tmp_path / "esp.pcap"
    conf = tmp_path / "conf"
    conf.mkdir()
    gen_esp.generate(out, 60, sas=3, cipher=cipher, keys_out=conf / "esp_sa")
    (conf / "preferences").write_text(
        "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n"
    )
    res = subprocess.run(
        [
            "tshark",
            "-r",
            str(out),
            "-Y",
            "esp.icv_good == 1 && udp.dstport == 5001",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"WIRESHARK_CONFIG_DIR": str(conf), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert len(res.stdout.split()) == 60  # every ICV verified and every inner UDP packet decoded

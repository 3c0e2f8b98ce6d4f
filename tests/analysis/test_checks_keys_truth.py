"""Key material said out loud (issue 11): wrong keys, a few ICV failures, keys that match no SA,
algorithms not implemented here, key sources' notes. Captures are synthesized with the project's
writer and ESP encryptor; the IKE case uses a stored charon-vs-pluto recording."""

from __future__ import annotations

import dataclasses
import json
import lzma
from pathlib import Path

from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.decryption.esp import ip_packet
from ipsecdiag.esp.sa import EspEncryptor
from ipsecdiag.keys.algorithms import ENCR_TWOFISH_CBC
from ipsecdiag.keys.load import load_key_sources
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, KeySourceNote, KeyStore, SecretBytes
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Report, Severity
from ipsecdiag.report.json import report_dict
from ipsecdiag.wire.registry import EncrId, IntegId

SRC, DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SPI = 0xC0FFEE01
KEYDATA = Path(__file__).parent.parent / "keys" / "data"


def _keys(spi: int = SPI, integ_key: bytes = b"\x22" * 32, **kw: object) -> ChildSaKeys:
    base = ChildSaKeys(
        spi=spi,
        encr=int(EncrId.ENCR_AES_CBC),
        encr_key=SecretBytes(b"\x11" * 16),
        integ=int(IntegId.AUTH_HMAC_SHA2_256_128),
        integ_key=SecretBytes(integ_key),
        src="10.0.0.1",
        dst="10.0.0.2",
        esn=False,
        source="k.toml:3",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _inner(n: int) -> bytes:
    # An inner IPv4 packet (protocol 253, experimentation) for tunnel mode.
    return ip_packet(bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2]), 253, bytes([n]) * 40)


def _capture(path: Path, *, count: int = 10, corrupt: tuple[int, ...] = ()) -> Path:
    enc = EspEncryptor(_keys(), DeterministicRandom("esp").bytes)
    with PcapWriter(path, 101) as w:
        for i in range(1, count + 1):
            esp = bytearray(enc.encrypt(_inner(i), 4, seq=i))
            if i in corrupt:
                esp[30] ^= 0x01  # one bit of ciphertext: the ICV no longer matches
            w.write(1_700_000_000.0 + i, ip_packet(SRC, DST, 50, bytes(esp)))
    return path


def _ids(r: Report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in r.findings:
        out.setdefault(f.id, []).append(f)
    return out


def test_right_keys_raise_no_key_finding(tmp_path: Path) -> None:
    r = analyze_capture(_capture(tmp_path / "c.pcap"), keys=KeyStore([_keys()]))
    assert r.esp_flows[0].decrypted == 10
    assert not {"keys-wrong", "esp-integrity-failure", "keys-unmatched", "algorithm-unsupported"} & set(_ids(r))


def test_a_few_icv_failures_among_verified_packets_name_their_frames(tmp_path: Path) -> None:
    r = analyze_capture(_capture(tmp_path / "c.pcap", corrupt=(4, 7)), keys=KeyStore([_keys()]))
    [f] = _ids(r)["esp-integrity-failure"]
    assert f.frames == [4, 7] and f.severity == Severity.ERROR
    assert "keys-wrong" not in _ids(r)
    assert report_dict(r)["esp_flows"][0]["integrity_failed_frames"] == [4, 7]


def test_wrong_keys_are_an_error_naming_the_key_source(tmp_path: Path) -> None:
    r = analyze_capture(_capture(tmp_path / "c.pcap"), keys=KeyStore([_keys(integ_key=b"\x33" * 32)]))
    [f] = _ids(r)["keys-wrong"]
    assert f.severity == Severity.ERROR and r.worst_severity() == Severity.ERROR
    assert "0xc0ffee01" in f.title and any("k.toml:3" in e for e in f.evidence)
    assert f.frames == list(range(1, 11))
    assert "esp-integrity-failure" not in _ids(r)


def test_keys_for_other_sas_say_none_matches_with_both_sides(tmp_path: Path) -> None:
    other = _keys(spi=0x99, src="10.9.9.9", dst="10.9.9.8", source="other.toml:7")
    r = analyze_capture(_capture(tmp_path / "c.pcap"), keys=KeyStore([other]))
    [f] = _ids(r)["keys-unmatched"]
    assert f.title == "1 key record(s) loaded, none matches an SA here"
    keys, capture = f.evidence
    assert "00000099" in keys and "other.toml:7" in keys and "c0ffee01" in capture


def test_twofish_is_named_as_the_source_named_it(tmp_path: Path) -> None:
    twofish = _keys(encr=ENCR_TWOFISH_CBC, encr_label="TWOFISH-CBC")
    r = analyze_capture(_capture(tmp_path / "c.pcap"), keys=KeyStore([twofish]))
    [f] = _ids(r)["algorithm-unsupported"]
    assert f.title.startswith("TWOFISH-CBC cannot be decrypted here")
    assert "65789" not in f.title and any("10 packet(s) not decrypted" in e for e in f.evidence)
    assert "keys-wrong" not in _ids(r)


def test_private_use_number_without_a_label_is_named_by_its_number(tmp_path: Path) -> None:
    r = analyze_capture(_capture(tmp_path / "c.pcap"), keys=KeyStore([_keys(encr=1024)]))
    [f] = _ids(r)["algorithm-unsupported"]
    assert f.title.startswith("ENCR_1024 cannot be decrypted here")


def test_key_source_notes_are_a_warning_and_in_the_json(tmp_path: Path) -> None:
    store = KeyStore([_keys()])
    store.notes.append(KeySourceNote("empty.log", "no-keys", "no usable keys: log level too low"))
    store.add(_keys(spi=0x77, incomplete="pluto cut the key short"))
    r = analyze_capture(_capture(tmp_path / "c.pcap"), keys=store)
    [f] = _ids(r)["key-source-unused"]
    assert f.severity == Severity.WARNING and "empty.log: no usable keys: log level too low" in f.evidence
    doc = report_dict(r)
    assert doc["schema"] == "ipsecdiag/report-1"
    assert doc["keys"]["notes"] == [{"source": "empty.log", "kind": "no-keys", "reason": "no usable keys: log level too low"}]
    assert doc["keys"]["records"] == [{"kind": "esp", "spi": "c0ffee01", "source": "k.toml:3", "algorithm": "ENCR_AES_CBC"}]
    json.dumps(doc)


def test_wrong_ike_keys_are_an_error_per_ike_sa(tmp_path: Path) -> None:
    log = tmp_path / "charon.log"
    log.write_bytes(lzma.decompress((KEYDATA / "charon-vs-pluto-gcm.log.xz").read_bytes()))
    loaded = load_key_sources([log])
    bad = KeyStore()
    for k in loaded.store:
        if isinstance(k, IkeSaKeys):
            flip = bytes(b ^ 0xFF for b in k.sk_ei.reveal())
            k = dataclasses.replace(k, sk_ei=SecretBytes(flip), sk_er=SecretBytes(flip))
        bad.add(k)
    good = analyze_capture(KEYDATA / "charon-vs-pluto-gcm.pcap", keys=loaded.store)
    assert "keys-wrong" not in _ids(good)
    r = analyze_capture(KEYDATA / "charon-vs-pluto-gcm.pcap", keys=bad)
    [f] = _ids(r)["keys-wrong"]
    assert f.ike_sa == r.ike_sas[0].key and str(log) in " ".join(f.evidence)
    assert f.severity == Severity.ERROR

"""Every capture in the shared corpus analyses without a traceback, and what we reconstruct
agrees with Wireshark's view: IKE messages (SPIs, exchange type, message id, request/response),
clear notify names and ESP packet counts per SPI.

tshark is the oracle (skipped when it is not installed). It dissects per frame; we report per
message, so each tshark IKE frame must be one of the frames of a message of ours with the same
header fields, and every ESP frame must be counted under its SPI.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus

from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.report.json import report_dict
from ipsecdiag.wire.registry import NotifyType, V1NotifyType, name_of

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (Debian package tshark)")

CAPTURE_SUFFIXES = {".pcap", ".pcapng", ".cap"}


def corpus_captures() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in CAPTURE_SUFFIXES)


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(CORPUS)) for p in paths]


CAPTURES = corpus_captures()


def _tshark_fields(path: Path, display_filter: str, fields: list[str]) -> list[list[str]]:
    cmd = [
        TSHARK,
        "-r",
        str(path),
        "-n",
        "-Y",
        display_filter,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def _our_messages(rep: dict) -> dict[int, list[tuple[str, int, int, bool, list[str]]]]:
    """frame -> [(spi_i, exchange_type, message_id, is_response, notifies)] for every frame
    that carried (part of) a message."""
    by_frame: dict[int, list] = {}
    for sa in rep["ike_sas"]:
        for ex in sa["exchanges"]:
            msgs = ex.get("messages") or [ex["request"], ex["response"]]
            for m in msgs:
                if m is None:
                    continue
                for fr in m["frames"]:
                    by_frame.setdefault(fr, []).append(
                        (sa["spi_i"], ex["exchange_type"], ex["message_id"], m, m["notifies"])
                    )
    return by_frame


@needs_corpus
@pytest.mark.parametrize("path", CAPTURES, ids=_ids(CAPTURES))
def test_corpus_capture_analyses_without_traceback(path: Path) -> None:
    rep = analyze_capture(path)
    d = report_dict(rep)
    s = d["source"]
    assert s["frames"] >= 0
    # Every frame is accounted for: IPsec or skipped for a named reason.
    assert s["ipsec_frames"] + sum(s["skipped"].values()) == s["frames"], s


@needs_corpus
@needs_tshark
@pytest.mark.parametrize("path", CAPTURES, ids=_ids(CAPTURES))
def test_ike_messages_agree_with_tshark(path: Path) -> None:
    rep = report_dict(analyze_capture(path))
    ours = _our_messages(rep)
    malformed_frames = {f for fd in rep["findings"] if fd["id"] == "malformed-packet" for f in fd["frames"]}
    rows = _tshark_fields(
        path,
        "isakmp && !icmp && !icmpv6",
        [
            "frame.number",
            "isakmp.ispi",
            "isakmp.exchtype",
            "isakmp.messageid",
            "isakmp.flags",
            "isakmp.version",
            "isakmp.notify.msgtype",
            "_ws.malformed",
        ],
    )
    checked = 0
    for row in rows:
        row += [""] * (8 - len(row))
        frame = int(row[0])
        if not row[1] or row[7] or frame in malformed_frames:
            continue  # tshark itself found it malformed, or so did we (reported as a finding)
        ispi = row[1].split(",")[0].removeprefix("0x").lower()
        exch = int(row[2].split(",")[0])
        mid = (
            int(row[3].split(",")[0], 16)
            if row[3].split(",")[0].startswith("0x")
            else int(row[3].split(",")[0])
        )
        flags = int(row[4].split(",")[0], 16)
        version = int(row[5].split(",")[0], 16)
        assert frame in ours, (
            f"frame {frame}: tshark sees an IKE message ({ispi} exch {exch} mid {mid}) we do not"
        )
        cands = [o for o in ours[frame] if o[0] == ispi and o[1] == exch and o[2] == mid]
        assert cands, f"frame {frame}: ours {ours[frame]!r} vs tshark ispi={ispi} exch={exch} mid={mid}"
        if version >= 0x20:
            is_resp = bool(flags & 0x20)
            assert any(_is_response(o) == is_resp for o in cands), f"frame {frame}: request/response differs"
            # Notifies in clear text (tshark cannot see the encrypted ones without keys).
            ts_notifies = [name_of(NotifyType, int(x)) for x in row[6].split(",") if x]
        else:
            ts_notifies = [name_of(V1NotifyType, int(x)) for x in row[6].split(",") if x]
        if ts_notifies:
            assert any(set(ts_notifies) <= set(o[4]) for o in cands), (
                f"frame {frame}: notifies {ts_notifies} not in ours {[o[4] for o in cands]}"
            )
        checked += 1
    if rows:
        assert checked or malformed_frames, "no IKE frame could be compared"


def _is_response(o: tuple) -> bool:
    m = o[3]
    return bool(m.get("is_response"))


@needs_corpus
@needs_tshark
@pytest.mark.parametrize("path", CAPTURES, ids=_ids(CAPTURES))
def test_esp_counts_agree_with_tshark(path: Path) -> None:
    rep = report_dict(analyze_capture(path))
    ours: Counter[str] = Counter()
    for f in rep["esp_flows"]:
        ours[f["spi"]] += f["packets"]
    truncated = {f for fd in rep["findings"] if fd["id"] == "capture-truncated" for f in fd["frames"]}
    rows = _tshark_fields(path, "esp && !icmp && !icmpv6", ["frame.number", "esp.spi"])
    theirs: Counter[str] = Counter()
    for row in rows:
        if int(row[0]) in truncated and ours.get(f"{int(row[1].split(',')[0], 16):08x}", 0) == 0:
            continue  # cut by the snap length before the sequence number: reported as truncated
        for spi in row[1].split(","):
            if spi:
                theirs[f"{int(spi, 16):08x}"] += 1
    assert ours == theirs

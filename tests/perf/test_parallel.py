"""--jobs over several captures: the reports are the serial ones, in the same order, and a
bad file in a worker is the same one-line error (ipsecdiag/parallel.py, issue 12)."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from ipsecdiag.cli import UserError, run_analysis
from ipsecdiag.parallel import auto_jobs, cores, map_in_order
from ipsecdiag.reconstruction.options import AnalysisOptions
from ipsecdiag.report.json import dumps
from tests.corpus import REPO_ROOT

SAMPLES = sorted((REPO_ROOT / "sample_pcaps").rglob("*.pcap"))
KEYED = REPO_ROOT / "tests" / "keys" / "data"


def _square_plus(shared: int, x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x + shared


def test_map_in_order_keeps_order_and_raises_the_first_error() -> None:
    assert map_in_order(_square_plus, 1, list(range(20)), 2) == [x * x + 1 for x in range(20)]
    with pytest.raises(ValueError, match="negative -3"):
        map_in_order(_square_plus, 0, [1, -3, 2, -5], 2)


def test_auto_jobs_stays_serial_for_small_inputs_only() -> None:
    assert auto_jobs(1, 1 << 40) == cores()  # one large capture is split into byte ranges
    assert auto_jobs(1, 1024) == 1
    assert auto_jobs(5, 1024) == 1
    assert auto_jobs(5, 1 << 30) == cores()


def test_parallel_reports_equal_serial_on_every_sample() -> None:
    options = AnalysisOptions()
    serial = run_analysis(list(SAMPLES), None, options, separate=True, jobs=1)
    parallel = run_analysis(list(SAMPLES), None, options, separate=True, jobs=2)
    assert len(serial) == len(SAMPLES) > 10
    assert dumps(parallel) == dumps(serial)


@pytest.mark.skipif(not KEYED.is_dir(), reason="keyed test captures not present")
def test_parallel_with_keys_equals_serial(tmp_path: Path) -> None:
    caps = sorted(KEYED.glob("*.pcap"))
    keys = []
    for xz in sorted(KEYED.glob("charon-*.log.xz")):
        plain = tmp_path / xz.name.removesuffix(".xz")
        plain.write_bytes(lzma.decompress(xz.read_bytes()))
        keys.append(plain)
    options = AnalysisOptions()
    serial = run_analysis(caps, keys, options, separate=True, jobs=1)
    assert '"decrypted": true' in dumps(serial)  # the keys were used, so workers need them too
    assert dumps(run_analysis(caps, keys, options, separate=True, jobs=2)) == dumps(serial)


def test_bad_capture_in_a_worker_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(UserError, match="not a pcap or pcapng file"):
        run_analysis([SAMPLES[0], bad], None, AnalysisOptions(), separate=True, jobs=2)

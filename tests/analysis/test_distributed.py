"""``analyze --scheduler``: captures analysed on a Dask LocalCluster give the serial reports, in
input order; the workers load the key files themselves (no key bytes in the tasks)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'ipsecdiag[dask]'")

from ipsecdiag.cli import _analyze_run_in_worker
from ipsecdiag.distributed import DaskMapper, RemoteAnalysis, analyze_run, analyze_runs, dask_mapper
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.options import DEFAULT_OPTIONS
from ipsecdiag.report.json import report_dict

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pcaps"
CAPTURES = [SAMPLES / "ikev2-psk-ok.pcap", SAMPLES / "ikev2-auth-failed.pcap", SAMPLES / "ikev1-main-psk.pcap"]
KEYS = [SAMPLES / "ikev2-psk-ok.charon.log", SAMPLES / "ikev1-main-psk.charon.log"]


def _serial(cap: Path) -> dict:
    from ipsecdiag.cli import _load_keys

    return report_dict(analyze_capture(cap, keys=_load_keys(KEYS), options=DEFAULT_OPTIONS))


def _double(shared: int, x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return shared * x


@pytest.fixture(scope="module")
def mapper():
    # Two worker processes: nothing is inherited from this process, as on a real cluster.
    with dask_mapper("local", jobs=2, processes=True, timeout=120) as m:
        yield m


def test_mapper_keeps_order_and_raises(mapper: DaskMapper) -> None:
    assert mapper(_double, 3, list(range(20))) == [3 * x for x in range(20)]
    assert mapper(_double, 3, []) == []
    with pytest.raises(ValueError, match="negative -1"):
        mapper(_double, 1, [1, -1, 2])


def test_reports_equal_the_serial_ones(mapper: DaskMapper) -> None:
    shared = RemoteAnalysis(tuple(str(k) for k in KEYS), DEFAULT_OPTIONS, _analyze_run_in_worker)
    assert b"SecretBytes" not in pickle.dumps(shared)  # paths and options travel, never keys
    got = mapper(analyze_run, shared, [[str(c)] for c in CAPTURES])
    assert [report_dict(r) for [r] in got] == [_serial(c) for c in CAPTURES]
    assert any(f["decrypted"] for f in report_dict(got[0][0])["esp_flows"])  # keys were loaded there


def test_analyze_runs_threads_cluster() -> None:
    reports = analyze_runs("local", [[c] for c in CAPTURES], KEYS, DEFAULT_OPTIONS, _analyze_run_in_worker, jobs=1, processes=False)
    assert [report_dict(r) for r in reports] == [_serial(c) for c in CAPTURES]


def test_cli_scheduler_local(tmp_path: Path) -> None:
    def run(*extra: str) -> dict:
        out = tmp_path / "r.json"
        args = ["analyze", *map(str, CAPTURES), "--keys", str(KEYS[0]), "--keys", str(KEYS[1])]
        p = subprocess.run(
            [sys.executable, "-m", "ipsecdiag", *args, "--json", str(out), "--fail-on", "never", *extra],
            capture_output=True, text=True, timeout=200, cwd=ROOT,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        return json.loads(out.read_text())

    assert run("--scheduler", "local", "--jobs", "2") == run("--jobs", "1")


def test_unreachable_scheduler_is_one_line() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "analyze", str(CAPTURES[0]), "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert p.returncode == 2 and "cannot connect" in p.stderr and "Traceback" not in p.stderr


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("dask")
    cap, keys = d / "esp.pcap", d / "esp_sa"
    gen = [sys.executable, str(ROOT / "bench" / "gen_esp.py"), str(cap), "6000", "--sas", "3"]
    subprocess.run([*gen, "--cipher", "aes-gcm-128", "--keys-out", str(keys)], check=True, capture_output=True, timeout=120)
    return cap, keys


def test_one_capture_in_byte_ranges_on_the_cluster(
    mapper: DaskMapper, big_capture: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipsecdiag.cli import _load_keys
    from ipsecdiag.distributed import analyze_split_on
    from ipsecdiag.parallel import SPLIT_STATS

    cap, keys = big_capture
    store = _load_keys([keys])
    serial = report_dict(analyze_capture(cap, keys=store))
    monkeypatch.setenv("IPSECDIAG_RANGE_BYTES", str(256 * 1024))  # several ranges of a small file
    merged = SPLIT_STATS.merged
    got = analyze_split_on(mapper, cap, 3, [str(keys)], store, DEFAULT_OPTIONS, _analyze_run_in_worker)
    assert report_dict(got) == serial
    assert SPLIT_STATS.merged == merged + 1  # joined from the workers' ranges, not redone whole
    assert any(f["decrypted"] for f in serial["esp_flows"])


def test_workers_forget_the_keys_afterwards(mapper: DaskMapper) -> None:
    from ipsecdiag import distributed

    shared = RemoteAnalysis(tuple(str(k) for k in KEYS), DEFAULT_OPTIONS, _analyze_run_in_worker)
    mapper(analyze_run, shared, [[str(CAPTURES[0])]])
    held = mapper.client.run(lambda: len(distributed._STORES))
    assert any(held.values())
    mapper.client.run(distributed.forget_keys)
    assert not any(mapper.client.run(lambda: len(distributed._STORES)).values())


def test_an_existing_scheduler_by_address() -> None:
    from distributed import LocalCluster

    from ipsecdiag import distributed

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        reports = analyze_runs(cluster.scheduler_address, [[c] for c in CAPTURES[:2]], KEYS, DEFAULT_OPTIONS, _analyze_run_in_worker)
        assert [report_dict(r) for r in reports] == [_serial(c) for c in CAPTURES[:2]]
        assert not distributed._STORES  # the command told the workers to forget the keys

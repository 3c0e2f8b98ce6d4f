"""No output option can modify an input (same path, symbolic link, hard link, ``./x``), outputs
appear whole or not at all, and they are private (issue 14).

Each output option is tried against each kind of input it could clobber: ``analyze --json``
(capture, key file, CA file), ``decrypt -o`` (capture, key file), ``keys convert -o`` (its own
source, as a file and as a Wireshark table inside the output directory).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsecdiag.cli import app
from ipsecdiag.outputs import OutputError, refuse_inputs, write_output, writing

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pcaps"
runner = CliRunner()

# Never parsed: the output check comes before the CA files are read.
CA_PEM = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    shutil.copy(SAMPLES / "ikev2-psk-ok.pcap", tmp_path / "cap.pcap")
    shutil.copy(SAMPLES / "ikev2-psk-ok.charon.log", tmp_path / "charon.log")
    return tmp_path


def _aliases(target: Path) -> dict[str, Path]:
    """Other names of ``target``: itself, ``dir/./name``, a symbolic link, a hard link."""
    d = target.parent
    (d / f"sym-{target.name}").symlink_to(target.name)
    os.link(target, d / f"hard-{target.name}")
    return {
        "same": target,
        "dot": d / "." / target.name,
        "symlink": d / f"sym-{target.name}",
        "hardlink": d / f"hard-{target.name}",
    }


def _refused(args: list[str], protected: list[Path]) -> None:
    before = {p: p.read_bytes() for p in protected}
    res = runner.invoke(app, args)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    assert len(lines) == 1 and "refusing to overwrite an input" in lines[0], res.stderr
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p} was modified"


@pytest.mark.parametrize("alias", ["same", "dot", "symlink", "hardlink"])
@pytest.mark.parametrize("victim", ["capture", "keys", "ca"])
def test_analyze_json_never_overwrites_an_input(work: Path, alias: str, victim: str) -> None:
    ca = work / "ca.pem"
    ca.write_text(CA_PEM)
    target = {"capture": work / "cap.pcap", "keys": work / "charon.log", "ca": ca}[victim]
    out = _aliases(target)[alias]
    args = ["analyze", str(work / "cap.pcap"), "--keys", str(work / "charon.log"), "--json", str(out)]
    _refused(args + ["--ca", str(ca)] if victim == "ca" else args, [target])


@pytest.mark.parametrize("alias", ["same", "dot", "symlink", "hardlink"])
@pytest.mark.parametrize("victim", ["capture", "keys"])
def test_decrypt_output_never_overwrites_an_input(work: Path, alias: str, victim: str) -> None:
    target = work / ("cap.pcap" if victim == "capture" else "charon.log")
    out = _aliases(target)[alias]
    _refused(["decrypt", str(work / "cap.pcap"), "-k", str(work / "charon.log"), "-o", str(out)], [target])


@pytest.mark.parametrize("alias", ["same", "dot", "symlink", "hardlink"])
@pytest.mark.parametrize("to", ["toml", "xfrm"])
def test_keys_convert_never_overwrites_its_source(work: Path, alias: str, to: str) -> None:
    src = work / "charon.log"
    out = _aliases(src)[alias]
    _refused(["keys", "convert", str(src), "--to", to, "-o", str(out)], [src])


def test_keys_convert_never_overwrites_a_table_of_its_source_directory(work: Path) -> None:
    wsdir = work / "ws"
    res = runner.invoke(app, ["keys", "convert", str(work / "charon.log"), "--to", "wireshark", "-o", str(wsdir)])
    assert res.exit_code == 0, res.stderr
    tables = sorted(p for p in wsdir.iterdir() if p.is_file())
    assert tables
    (work / "wslink").symlink_to("ws")
    _refused(["keys", "convert", str(wsdir), "--to", "wireshark", "-o", str(work / "wslink")], tables)
    # A table given as a file, written into by the directory target: the same refusal.
    _refused(["keys", "convert", str(tables[0]), "--to", "wireshark", "-o", str(wsdir)], tables)


def test_outputs_that_are_not_inputs_are_written_private(work: Path) -> None:
    old = os.umask(0)
    try:
        out_json = work / "report.json"
        res = runner.invoke(app, ["analyze", str(work / "cap.pcap"), "--json", str(out_json)])
        assert res.exit_code in (0, 1), res.stderr
        out_pcap = work / "plain.pcap"
        res = runner.invoke(
            app, ["decrypt", str(work / "cap.pcap"), "-k", str(work / "charon.log"), "-o", str(out_pcap)]
        )
        assert res.exit_code == 0, res.stderr
    finally:
        os.umask(old)
    for p in (out_json, out_pcap):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert out_pcap.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"
    assert not [p for p in work.iterdir() if p.name.endswith(".part")]


def test_a_stricter_umask_is_kept(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        write_output(tmp_path / "r.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o400


def test_a_symlinked_output_that_is_no_input_replaces_its_target(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    write_output(tmp_path / "link.json", "new")
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "real.json").read_text() == "new"


def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError), writing(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pcap"]


def test_decrypt_of_an_unreadable_capture_leaves_no_output(work: Path) -> None:
    bad = work / "bad.pcap"
    bad.write_bytes((SAMPLES / "ikev2-psk-ok.pcap").read_bytes()[:20])
    out = work / "plain.pcap"
    res = runner.invoke(app, ["decrypt", str(bad), "-k", str(work / "charon.log"), "-o", str(out)])
    assert res.exit_code == 2
    assert not out.exists() and not [p for p in work.iterdir() if p.name.endswith(".part")]


def test_devices_are_written_directly_not_replaced(work: Path) -> None:
    res = runner.invoke(app, ["analyze", str(work / "cap.pcap"), "--json", os.devnull])
    assert res.exit_code in (0, 1), res.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_reading_stdin_while_writing_stdout_is_not_a_clash() -> None:
    refuse_inputs([("--json", Path("/dev/stdout"))], [Path("/dev/stdin")])
    with pytest.raises(OutputError):
        refuse_inputs([("-o", Path(__file__))], [Path(__file__)])


@pytest.mark.parametrize(
    "args",
    [
        lambda d: ["analyze", str(d / "cap.pcap")],
        lambda d: ["analyze", str(d / "cap.pcap"), "--json", "-"],
        lambda d: ["keys", "list", str(d / "charon.log")],
    ],
)
def test_stdout_on_a_full_disk_is_one_line(work: Path, args: Callable[[Path], list[str]]) -> None:
    with open("/dev/full", "w") as full:
        res = subprocess.run(
            [sys.executable, "-m", "ipsecdiag", *args(work)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert lines == ["ipsecdiag: error: cannot write output: No space left on device"], res.stderr

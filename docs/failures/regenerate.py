"""Regenerate the output blocks of the failure pages (docs/failures/*.md) from ipsecdiag itself.

Each block that shows a findings section follows the command that produced it, written in
backticks in the paragraph above (`ipsecdiag analyze FILE ...`). The block becomes the verdict
line and the findings section of ``ipsecdiag analyze ... --no-ladder`` at 100 columns; findings
whose id the page is not about (its ``Finding:``/``Findings:`` line) are cut to their title line.
A file named without a directory is looked for in the corpus lab scenario the paragraph names
(``lab scenario `NAME` ``), then in ``$IPSECDIAG_RECORDINGS`` (where the interop tests keep the
strongSwan recordings of the certificate and liveness pages when it is set, see
tests/interop/test_failure_pages_strongswan.py); a block whose inputs are not here is left as
it is and listed.

Usage: python docs/failures/regenerate.py [PAGE.md ...]
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = Path(os.environ.get("IPSECDIAG_CORPUS") or ROOT.parent / "shared" / "corpus") / "lab"
RECORDINGS = os.environ.get("IPSECDIAG_RECORDINGS")
EXE = Path(sys.executable).parent / "ipsecdiag"
HEAD = re.compile(r"^\d+\. (ERROR|WARNING|INFO)\s+\[([a-z0-9-]+)\]")
CMD = re.compile(r"`(ipsecdiag analyze [^`]+)`")
SCENARIO = re.compile(r"lab scenario `([^`]+)`")


def topic_ids(text: str) -> set[str]:
    m = re.search(r"^Findings?: (.*?)(?:\n\n)", text, re.S | re.M)
    return set(re.findall(r"`([a-z0-9-]+)`", m.group(1))) if m else set()


def findings_block(output: str, ids: set[str]) -> str:
    lines = output.splitlines()
    verdict = lines[: next((i for i, ln in enumerate(lines) if not ln.strip()), 1)]  # may wrap
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Findings ("))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    out, cut = [*verdict, "", lines[start]], False
    for ln in lines[start + 1 : end]:
        m = HEAD.match(ln)
        if m:
            cut = m.group(2) not in ids
            out.append(f"{ln}  (…)" if cut else ln)
        elif not cut:
            out.append(ln)
    return "\n".join(out)


def where(args: list[str], paragraph: str) -> Path | None:
    """The directory to run in: the repository, or the lab scenario the paragraph names."""
    files = [a for a in args if not a.startswith("-") and not a.isdigit()]  # (not --path-mtu's value)
    if all((ROOT / f).exists() for f in files):
        return ROOT
    m = (SCENARIO.findall(paragraph) or [None])[-1]
    if m and all((LAB / m / f).exists() for f in files):
        return LAB / m
    if RECORDINGS and all((Path(RECORDINGS) / f).exists() for f in files):
        return Path(RECORDINGS)
    return None


def regenerate(page: Path) -> list[str]:
    text = page.read_text()
    ids = topic_ids(text)
    parts = re.split(r"(^```\n.*?^```\n)", text, flags=re.S | re.M)
    missing: list[str] = []
    for i in range(1, len(parts), 2):
        body = parts[i][4:-4]
        # the verdict above it may wrap over several lines at 100 columns
        if not any(ln.startswith("Findings (") for ln in body.splitlines()[:6]):
            continue
        before = parts[i - 1].rstrip()
        paragraph = before[before.rfind("\n\n") + 2 :]
        cmds = CMD.findall(paragraph.replace("\n", " "))
        if not cmds:
            missing.append(f"{page.name}: block {i // 2 + 1}: no command above it")
            continue
        args = shlex.split(cmds[-1])[2:]
        cwd = where(args, paragraph) or where(args, "".join(parts[:i]))  # (a scenario named earlier)
        if cwd is None:
            missing.append(f"{page.name}: {cmds[-1]}: inputs not here")
            continue
        env = {**os.environ, "COLUMNS": "100"}
        run = subprocess.run(
            [str(EXE), "analyze", *args, "--no-ladder", "--no-pager"],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        )
        if run.returncode not in (0, 1):
            missing.append(f"{page.name}: {cmds[-1]}: exit {run.returncode}: {run.stderr.strip()}")
            continue
        parts[i] = "```\n" + findings_block(run.stdout, ids) + "\n```\n"
    page.write_text("".join(parts))
    return missing


def main() -> None:
    pages = [Path(p) for p in sys.argv[1:]] or sorted(Path(__file__).parent.glob("*.md"))
    for p in pages:
        for m in regenerate(p):
            print(f"not regenerated: {m}", file=sys.stderr)


if __name__ == "__main__":
    main()

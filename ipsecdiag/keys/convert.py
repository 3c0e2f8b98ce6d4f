"""``ipsecdiag keys convert``: read key material in any format, write it as another.

Targets: ``wireshark`` (a configuration directory for ``WIRESHARK_CONFIG_DIR``), ``toml`` (the
ipsecdiag key file) and ``xfrm`` (a shell script of ``ip xfrm state add`` commands). Everything
written is private (files 0600, a new directory 0700).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.keys._files import write_private
from ipsecdiag.keys.keyfile import write_keyfile
from ipsecdiag.keys.load import load_key_file
from ipsecdiag.keys.model import AnyKeys, ChildSaKeys, KeyStore
from ipsecdiag.keys.wireshark import write_wireshark_dir
from ipsecdiag.keys.xfrm import format_xfrm_commands

TARGETS = ("wireshark", "toml", "xfrm")


@dataclass
class ConvertSummary:
    """What was read (format per input) and written (files, records) and what was skipped."""

    target: str
    out: Path
    formats: dict[str, str] = field(default_factory=dict)
    records_in: int = 0
    records_out: int = 0
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def convert(
    paths: Sequence[str | Path], to: str, out: Path, *, esn_layout: bool = False, any_address: bool = False
) -> ConvertSummary:
    """Convert ``paths`` (files or Wireshark directories) to ``to`` at ``out``.

    Raises :class:`~ipsecdiag.keys.errors.KeyFileError` for unreadable input and ``ValueError``
    for an unknown target. ``esn_layout`` selects the 10-field ``esp_sa`` of newer Wireshark;
    ``any_address`` writes every ``esp_sa`` row with wildcard addresses. When no record can be
    written, nothing is written (``records_out == 0``, ``files`` empty) and the caller says so.
    """
    if to not in TARGETS:
        raise ValueError(f"unknown target {to!r} (expected one of {', '.join(TARGETS)})")
    out = Path(out)
    summary = ConvertSummary(target=to, out=out)
    store = KeyStore()
    seen: set[AnyKeys] = set()
    for p in paths:
        res = load_key_file(p)
        summary.formats[str(p)] = res.format
        summary.records_in += len(res.keys)
        summary.warnings.extend(res.warnings)
        summary.warnings.extend(str(n) for n in res.notes)
        for k in res.keys:
            # The same SA from two sources (both peers' logs) is written once.
            same = dataclasses.replace(k, source="")
            if same not in seen:
                seen.add(same)
                store.add(k)
    if not store:
        # Nothing to convert: write nothing (an empty table or directory looks like success).
        return summary
    if to == "wireshark":
        existed = out.exists()
        ws = write_wireshark_dir(store, out, esn_layout=esn_layout, any_address=any_address)
        summary.files = list(ws.files.values())
        summary.records_out = sum(ws.rows.values())
        summary.warnings.extend(ws.warnings)
        if not summary.records_out and not existed:
            out.rmdir()  # made for the tables, none of which had a row
    elif to == "toml":
        summary.records_out = write_keyfile(store, out)
        summary.files = [out]
    else:
        lines, warnings = format_xfrm_commands([k for k in store if isinstance(k, ChildSaKeys)])
        summary.warnings.extend(warnings)
        skipped_ike = len(store) - sum(1 for k in store if isinstance(k, ChildSaKeys))
        if skipped_ike:
            summary.warnings.append(f"{skipped_ike} IKE SA(s) not written: ip xfrm only holds ESP/AH SAs")
        if lines:
            script = "#!/bin/sh\n# ip xfrm SAs written by ipsecdiag: holds secret keys.\nset -e\n"
            write_private(out, script + "".join(line + "\n" for line in lines))
            summary.records_out = len(lines)
            summary.files = [out]
    return summary

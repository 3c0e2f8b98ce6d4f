"""The report's tables: the header, IKE SAs, CHILD SAs, ESP and AH flows.

Cells never break inside a number, an SPI, an address or an algorithm name (Breakable wraps at
``/``, ``-``, ``,`` and spaces only); a table too wide for the console is stacked instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..reconstruction.model import (
    EspFlow,
    Report,
    Severity,
    raw_seconds,
    utc_datetime,
)
from ..reconstruction.time_order import NOT_JUDGED, out_of_order
from .childsa import ChildSaRow
from .view import proposal_short

SEV_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
STATE_STYLE = {"established": "green", "failed": "red", "incomplete": "yellow", "deleted": "dim"}


def _ts(ts: float | None) -> str:
    if ts is None:
        return "-"
    dt = utc_datetime(ts)
    return raw_seconds(ts) if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _dur(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    d = b - a
    if d < 60:
        return f"{d:.3f}s"
    if d < 3600:
        return f"{int(d // 60)}m{d % 60:04.1f}s"
    return f"{int(d // 3600)}h{int(d % 3600 // 60):02d}m"


# A rule under the header and nothing else: leaves the width to the data on 80 columns.
ASCII_SIMPLE_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def _box(console: Console) -> box.Box:
    return box.SIMPLE_HEAD if console.is_terminal and not console.legacy_windows else ASCII_SIMPLE_HEAD


class Header:
    def __init__(self, report: Report) -> None:
        self.r = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s = self.r.source
        t = Table.grid(padding=(0, 1))
        t.add_column(style="bold")
        t.add_column()
        # The label column is at most 9 wide ("Truncated") plus a space.
        files = ", ".join(_short_path(f, max(options.max_width - 10, 20)) for f in s.files)
        t.add_row("File", files + (f" ({', '.join(s.formats)})" if s.formats else ""))
        t.add_row("Span", f"{_ts(s.first_ts)} .. {_ts(s.last_ts)} ({_dur(s.first_ts, s.last_ts)})")
        t.add_row(
            "Frames",
            f"{s.frames} total, {s.ipsec_frames} IPsec: {s.ike_messages} IKE messages, "
            f"{s.esp_packets} ESP, {s.ah_packets} AH, {s.keepalives} NAT keepalives, "
            f"{s.icmp_errors} ICMP errors",
        )
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(s.skipped.items())) or "none"
        t.add_row("Skipped", skipped)
        if s.truncated_files:
            t.add_row("Truncated", Text("; ".join(s.truncated_files), style="yellow"))
        if s.keys_loaded:
            t.add_row("Keys", f"{s.keys_loaded} key record(s) loaded")
        yield Text("ipsecdiag analysis", style="bold underline")
        yield t


class IkeSaTable:
    def __init__(self, report: Report) -> None:
        self.r = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        summarised = sum(h.requests for h in self.r.half_open)
        if not self.r.ike_sas:
            yield Text(
                f"No IKE SA shown one by one: {summarised} unanswered first requests are summarised in the findings."
                if summarised
                else "No IKE SAs in this capture.",
                style="dim",
            )
            return
        t = Table(
            title="IKE SAs", box=_box(console), title_justify="left", padding=(0, 0, 0, 1), pad_edge=False
        )
        # Narrow enough for 60 columns: the version under the number, NAT-T under the state,
        # the peers on two lines, the proposal wrapped at '/' only.
        t.add_column("#", justify="right", no_wrap=True)
        t.add_column("Initiator\n-> Responder", no_wrap=True)
        t.add_column("State", no_wrap=True)
        t.add_column("Proposal")
        for i, sa in enumerate(self.r.ike_sas, 1):
            state = Text(sa.state, style=STATE_STYLE.get(sa.state, ""))
            if sa.state_basis == "inferred":  # AUTH not read: what followed showed it (no keys)
                state.append("\n(inferred)", style="dim")
            if sa.nat_seen:
                state.append("\nNAT-T")
            t.add_row(
                f"{i}\nv{sa.version}",
                f"{sa.initiator[0]}:{sa.initiator[1]}\n-> {sa.responder[0]}:{sa.responder[1]}",
                state,
                Breakable(proposal_short(sa.proposal) if sa.proposal else "-"),
            )
        yield t
        if summarised:
            yield Text(f"(+{summarised} unanswered first requests summarised in the findings)", style="dim")


class EspTable:
    def __init__(self, report: Report) -> None:
        self.r = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.r.esp_flows:
            return
        t = Table(
            title="ESP flows", box=_box(console), title_justify="left", padding=(0, 0, 0, 1), pad_edge=False
        )
        t.add_column("SPI", no_wrap=True)
        # Addresses are never cut: the column is as wide as the longest "-> address".
        addr = max(max(len(f.src), len(f.dst) + 3) for f in self.r.esp_flows)
        t.add_column("Src -> Dst", no_wrap=True, min_width=addr)
        t.add_column("Pkts", justify="right", no_wrap=True)
        t.add_column("Bytes", justify="right", no_wrap=True)
        t.add_column("Seq")
        t.add_column("Span", justify="right", no_wrap=True)
        keys = any(f.keys for f in self.r.esp_flows)
        if keys:
            t.add_column("Decr", justify="right")
        disorder = out_of_order(self.r)
        for f in self.r.esp_flows:
            seq = _seq_range(f, disorder)
            notes = []
            if f.duplicates:
                notes.append(f"{f.duplicates} dup")
            if f.reordered and not disorder:
                notes.append(f"{f.reordered} reord")
            if f.gaps:
                notes.append(f"{f.gaps} missing")
            if notes:
                seq += "\n" + ", ".join(notes)
            row: list[str | Breakable] = [
                f"{f.spi:08x}\n" + (f"UDP {f.dport}" if f.encap == "udp" else f.encap.upper() if f.encap != "none" else "ESP"),
                f"{f.src}\n-> {f.dst}",
                str(f.packets),
                str(f.bytes),
                Breakable(seq, breaks="., "),  # "1001..\n1010": after the dots only
                "not judged" if disorder else _dur(f.first_ts, f.last_ts),
            ]
            if keys:
                row.append(
                    Breakable(f"{f.decrypted}" + (f" ({f.integrity_failed} bad ICV)" if f.integrity_failed else ""))
                    if f.keys
                    else "no key"
                )
            t.add_row(*row)
        if _cuts(console, options, t):
            yield from self._stacked(disorder)  # at this width the table would cut a cell
        else:
            yield t
        if disorder:
            yield Text(f"Span and sequence reordering {NOT_JUDGED} (see capture-health); Seq is the lowest..highest", style="dim")

    def _stacked(self, disorder: bool) -> Iterator[Text]:
        yield Text("ESP flows", style="italic")
        for f in self.r.esp_flows:
            encap = f"UDP {f.sport}/{f.dport}" if f.encap == "udp" else f.encap.upper() if f.encap != "none" else "ESP"
            yield Text(f"{f.spi:08x} {encap} {f.src} -> {f.dst}", style="bold")
            reord = 0 if disorder else f.reordered
            notes = [f"{n} {what}" for n, what in ((f.duplicates, "dup"), (reord, "reord"), (f.gaps, "missing")) if n]
            line = f"  {f.packets} packets, {f.bytes} bytes, seq {_seq_range(f, disorder)}"
            span = "span not judged" if disorder else _dur(f.first_ts, f.last_ts)
            line += (f" ({', '.join(notes)})" if notes else "") + f", {span}"
            if f.keys:
                line += f", {f.decrypted} decrypted" + (f", {f.integrity_failed} bad ICV" if f.integrity_failed else "")
            yield Text(line)


def _seq_range(f: EspFlow, disorder: bool) -> str:
    """The first..last sequence number in frame order; out of time order the lowest..highest
    (frame order would print a backwards or partial range)."""
    return f"{f.seq_min}..{f.seq_max}" if disorder else f"{f.seq_first}..{f.seq_last}"


class AhTable:
    def __init__(self, report: Report) -> None:
        self.r = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = Table(
            title="AH flows", box=_box(console), title_justify="left", padding=(0, 0, 0, 1), pad_edge=False
        )
        for col in ("SPI", "Src -> Dst", "Pkts", "Seq", "ICV ok", "ICV bad"):
            t.add_column(
                col, justify="right" if col in ("Pkts", "ICV ok", "ICV bad") else "left", no_wrap=True
            )
        for f in self.r.ah_flows:
            t.add_row(
                f"{f.spi:08x}",
                f"{f.src}\n-> {f.dst}",
                str(f.packets),
                f"{f.seq_first}..{f.seq_last}",
                str(f.verified),
                str(f.integrity_failed),
            )
        yield t


class Breakable:
    """Text for a table cell that wraps only after a separator (``/``, ``-``, ``,``, a space),
    never inside a number, an SPI, an address or an algorithm name. Its minimum width is its
    longest token, so a table narrows other columns before it would cut one."""

    def __init__(self, text: str, style: str = "", breaks: str = "/-, ", split: re.Pattern[str] | None = None) -> None:
        self.text = text
        self.style = style
        b = re.escape(breaks)
        # ``split`` (tokens with their trailing separators) replaces the rule ``breaks`` makes.
        self._split = split or re.compile(rf"[^{b}\n]+[{b}]*|[{b}]+|\n")

    def _tokens(self) -> list[str]:
        return self._split.findall(self.text)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        lines = self.text.split("\n")
        longest = max((cell_len(t.rstrip()) for t in self._tokens() if t != "\n"), default=0)
        return Measurement(longest, max(cell_len(ln) for ln in lines))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        lines, cur = [], ""
        for tok in self._tokens():
            if tok == "\n":
                lines.append(cur.rstrip())
                cur = ""
            elif cur and cell_len((cur + tok).rstrip()) > width:
                lines.append(cur.rstrip())
                cur = tok.lstrip()
            else:
                cur += tok
        lines.append(cur.rstrip())
        yield Text("\n".join(lines), style=self.style)


def _cuts(console: Console, options: ConsoleOptions, table: Table) -> bool:
    """Whether rich would cut a cell of ``table`` at this width (it ends the part kept with
    an ellipsis). Its column fitting shrinks wrapping columns below their minimum width, so
    asking for the measurement is not enough: the table is laid out and looked at."""
    for line in console.render_lines(table, options, pad=False):
        text = "".join(seg.text for seg in line)
        if re.search(r"\S…", text):
            return True
    return False


def _short_path(path: str, width: int) -> str:
    """A file name that fits ``width``: the directory is shortened, never the name."""
    if len(path) <= width or "/" not in path:
        return path
    head, _, name = path.rpartition("/")
    dirs = head.split("/")
    while dirs and len(".../" + "/".join(dirs) + "/" + name) > width:
        dirs.pop(0)
    return ".../" + "/".join([*dirs, name])


class ChildSaTable:
    """The CHILD SAs as ``swanctl --list-sas`` lists them: a block per SA, one fact a line, so
    it reads the same at 60 and at 120 columns and no SPI, address or algorithm is cut."""

    def __init__(self, rows: list[ChildSaRow], report: Report) -> None:
        self.rows = rows
        self.r = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("CHILD SAs (in/out as the IKE initiator sees them)", style="bold")
        index = {sa.key: i for i, sa in enumerate(self.r.ike_sas, 1)}
        t0 = self.r.source.first_ts
        disorder = out_of_order(self.r)
        for n, row in enumerate(self.rows, 1):
            owner = "no IKE SA" if row.ike_sa is None else f"IKE SA #{index.get(row.ike_sa, '?')}"
            if row.ike_sa is not None and row.ike_sa_inferred:
                owner += " (by address)"
            head = Text(f"#{n} ", style="bold")
            head.append(f"{owner}, ")
            head.append(row.state, style=STATE_STYLE.get(row.state.split(",")[0], ""))
            algo = row.protocol + ("" if row.mode == "-" else f" {row.mode}")
            head.append(f", {algo}" + ("" if row.proposal == "-" else f" {row.proposal}"))
            yield head
            t = Table.grid(padding=(0, 1))
            t.add_column(no_wrap=True)
            t.add_column(no_wrap=True)
            t.add_column()
            t.add_row("  in", _spi_text(row.spi_in), f"{row.packets_in} packets, {row.bytes_in} bytes")
            t.add_row("  out", _spi_text(row.spi_out), f"{row.packets_out} packets, {row.bytes_out} bytes")
            yield t
            facts = Table.grid(padding=(0, 1))
            facts.add_column(no_wrap=True)
            facts.add_column()
            facts.add_row("  peers", f"{row.src} <-> {row.dst}")
            if row.ts_local or row.ts_remote:
                facts.add_row("  local", " ".join(row.ts_local) or "-")
                facts.add_row("  remote", " ".join(row.ts_remote) or "-")
            if row.first_ts is not None and t0 is not None:
                facts.add_row("  seen", NOT_JUDGED if disorder else f"+{row.first_ts - t0:.3f}s .. +{(row.last_ts or row.first_ts) - t0:.3f}s")
            yield facts


def _spi_text(spi: int | None) -> str:
    return "-" if spi is None else f"{spi:08x}"

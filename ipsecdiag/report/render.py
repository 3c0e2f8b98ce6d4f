"""Rich renderables for a Report: header, IKE SA table, exchange ladders, ESP flows, findings.

Each section is a renderable (``__rich_console__``), so the terminal view is composed rather
than printed; tests render to a fixed-width Console. Without a TTY, the CLI builds the Console
with ``no_color`` and ASCII boxes, so the same renderables degrade to plain text.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from ..reconstruction.model import (
    ExchangeRecord,
    Finding,
    IkeSaRecord,
    MessageRecord,
    Report,
    Severity,
    raw_seconds,
    utc_datetime,
)
from .view import digest, message_details

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
        t.add_row("File", ", ".join(s.files) + (f" ({', '.join(s.formats)})" if s.formats else ""))
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
        if not self.r.ike_sas:
            yield Text("No IKE SAs in this capture.", style="dim")
            return
        t = Table(
            title="IKE SAs", box=_box(console), title_justify="left", padding=(0, 0, 0, 1), pad_edge=False
        )
        t.add_column("#", justify="right")
        t.add_column("Ver")
        t.add_column("Initiator -> Responder", no_wrap=True)
        t.add_column("State")
        t.add_column("Proposal", overflow="fold", ratio=1)
        t.add_column("NAT-T")
        for i, sa in enumerate(self.r.ike_sas, 1):
            t.add_row(
                str(i),
                f"v{sa.version}",
                f"{sa.initiator[0]}:{sa.initiator[1]}\n-> {sa.responder[0]}:{sa.responder[1]}",
                Text(sa.state, style=STATE_STYLE.get(sa.state, "")),
                proposal_short(sa.proposal) if sa.proposal else "-",
                "yes" if sa.nat_seen else "no",
            )
        yield t


def proposal_short(p: dict | None) -> str:
    if not p:
        return "-"
    parts = []
    for k in ("encr", "integ", "prf", "hash", "ke", "auth", "esn"):
        v = p.get(k)
        if not v or v == "NONE":
            continue
        v = str(v).removeprefix("ENCR_").removeprefix("AUTH_")
        if k == "encr" and p.get("encr_key_bits"):
            v += f"_{p['encr_key_bits']}"
        parts.append(v)
    return "/".join(parts)


def _msg_label(e: ExchangeRecord, m: MessageRecord) -> Text:
    pl = " ".join(m.payloads)
    t = Text()
    t.append(e.type, style="bold")
    t.append(f" #{e.message_id} ")
    t.append("resp" if m.is_response else "req", style="dim")
    t.append(f" [{pl}]")
    if m.notifies:
        errs = [n for n in m.notifies]
        t.append(" N(" + ", ".join(errs) + ")", style="magenta")
    extra = []
    if m.retransmissions:
        extra.append(f"x{m.retransmissions + 1} sent")
    if m.ip_fragmented:
        extra.append(f"{max(tr.ip_fragments for tr in m.transmissions)} IP frags")
    if m.ikev2_fragments:
        extra.append(
            f"{m.ikev2_fragments} IKE frags"
            + (f", {m.fragments_missing} missing" if m.fragments_missing else "")
        )
    if m.encrypted and not m.decrypted:
        extra.append(m.decrypt_error or "encrypted")
    if m.malformed:
        extra.append("MALFORMED: " + m.malformed)
    if extra:
        t.append(" (" + "; ".join(extra) + ")", style="yellow")
    return t


class Ladder:
    """Initiator <-> responder arrows for every exchange of one IKE SA."""

    def __init__(self, sa: IkeSaRecord, index: int, t0: float | None) -> None:
        self.sa = sa
        self.index = index
        self.t0 = t0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        sa = self.sa
        head = Text(f"IKE SA #{self.index} ladder: ", style="bold")
        head.append(f"I {sa.initiator[0]}", style="blue")
        head.append("  <->  ")
        head.append(f"R {sa.responder[0]}", style="green")
        yield head
        spis = Text(f"SPIs {sa.spi_i.hex()} / {sa.spi_r.hex() if sa.spi_r else '-'}", style="dim")
        if sa.rekeyed_from:
            spis.append(f"  ({'probably ' if sa.rekey_inferred else ''}rekey of {sa.rekeyed_from})")
        yield spis
        t = Table(box=None, show_header=False, padding=(0, 1), expand=False)
        t.add_column("frame", justify="right", style="dim")
        t.add_column("time", justify="right", style="dim")
        t.add_column("dir")
        t.add_column("message", overflow="fold")
        for e in sa.exchanges:
            for m in e.all_messages():
                arrow = "I -->" if m.from_initiator else "<-- R"
                ts = f"+{m.ts - self.t0:.3f}" if self.t0 is not None else ""
                t.add_row(str(m.first_frame), ts, arrow, _msg_label(e, m))
                line = digest(message_details(m))
                if line:
                    t.add_row("", "", "", Text(line, style="dim"))
            if e.version == 2 and e.unanswered:
                t.add_row(
                    "",
                    "",
                    Text("  X  ", style="bold red"),
                    Text(f"no response to {e.type} #{e.message_id}", style="bold red"),
                )
        yield t


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
        t.add_column("Src -> Dst", no_wrap=True)
        t.add_column("Encap", no_wrap=True)
        t.add_column("Pkts", justify="right")
        t.add_column("Bytes", justify="right")
        t.add_column("Seq", overflow="fold")
        t.add_column("Span", justify="right", no_wrap=True)
        keys = any(f.keys for f in self.r.esp_flows)
        if keys:
            t.add_column("Decr", justify="right", no_wrap=True)
        for f in self.r.esp_flows:
            seq = f"{f.seq_first}..{f.seq_last}"
            notes = []
            if f.duplicates:
                notes.append(f"{f.duplicates} dup")
            if f.reordered:
                notes.append(f"{f.reordered} reord")
            if f.gaps:
                notes.append(f"{f.gaps} missing")
            if notes:
                seq += "\n" + ", ".join(notes)
            row = [
                f"{f.spi:08x}",
                f"{f.src}\n-> {f.dst}",
                f"UDP\n{f.sport}/{f.dport}" if f.encap == "udp" else "ESP",
                str(f.packets),
                str(f.bytes),
                seq,
                _dur(f.first_ts, f.last_ts),
            ]
            if keys:
                row.append(
                    f"{f.decrypted}" + (f" ({f.integrity_failed} bad ICV)" if f.integrity_failed else "")
                    if f.keys
                    else "no key"
                )
            t.add_row(*row)
        yield t


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


class FindingsView:
    def __init__(self, findings: list[Finding], *, verbose: bool = True) -> None:
        self.findings = findings
        self.verbose = verbose

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.findings:
            yield Text("Findings: none. The capture shows no problem ipsecdiag knows about.", style="green")
            return
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in Severity}
        yield Text(
            f"Findings ({counts[Severity.ERROR]} error, {counts[Severity.WARNING]} warning, "
            f"{counts[Severity.INFO]} info)",
            style="bold underline",
        )
        for i, f in enumerate(self.findings, 1):
            yield from self._one(i, f)

    def _one(self, i: int, f: Finding) -> Iterator[Text | Table]:
        head = Text(f"{i}. ")
        head.append(f"{f.severity.label.upper():7}", style=SEV_STYLE[f.severity])
        head.append(f" [{f.id}]", style="bold")
        # A long title wraps under itself, not under the number.
        line = Table.grid(padding=(0, 1))
        line.add_column(no_wrap=True)
        line.add_column(overflow="fold")
        line.add_row(head, f.title)
        yield line
        t = Table.grid(padding=(0, 1))
        t.add_column(style="dim", no_wrap=True)
        t.add_column(overflow="fold")
        t.add_row("", f.explanation)
        if f.frames:
            fr = ", ".join(map(str, f.frames[:25])) + (
                f" … ({len(f.frames)} frames)" if len(f.frames) > 25 else ""
            )
            t.add_row("frames", fr)
        for ev in f.evidence:
            t.add_row("evidence", ev)
        if self.verbose and f.cause:
            t.add_row("cause", f.cause)
        t.add_row("fix", Text(f.remediation, style="green"))
        yield t


def report_renderable(report: Report, *, ladders: bool = True, max_ladders: int = 20) -> Group:
    """Header, then the findings (what the user came for), then the evidence tables."""
    parts: list[object] = [
        Header(report),
        Text(""),
        FindingsView(report.findings),
        Text(""),
        IkeSaTable(report),
    ]
    if ladders:
        t0 = report.source.first_ts
        for i, sa in enumerate(report.ike_sas[:max_ladders], 1):
            parts += [Text(""), Ladder(sa, i, t0)]
        if len(report.ike_sas) > max_ladders:
            parts.append(
                Text(f"({len(report.ike_sas) - max_ladders} more IKE SAs not shown; use --json)", style="dim")
            )
    if report.esp_flows:
        parts += [Text(""), EspTable(report)]
    if report.ah_flows:
        parts += [Text(""), AhTable(report)]
    return Group(*parts)  # type: ignore[arg-type]

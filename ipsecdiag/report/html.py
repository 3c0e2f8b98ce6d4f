"""``--html report.html``: one self-contained file (no network, no script) per run.

For each capture: the verdict, the findings (each expandable to its explanation, evidence and
fix), the CHILD SA table, an exchange ladder per IKE SA (SVG sequence diagram, hover text and
an expandable list of each message's decrypted payloads) and an ESP plot per CHILD SA (one
lane each way: packet-rate bars from the flow's histogram, gaps and events; see ``svg.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from ..reconstruction.model import Finding, IkeSaRecord, Report, Severity, SourceInfo
from ..wire.jsontypes import Json
from .childsa import ChildSaRow, child_sa_rows
from .svg import esp_plot_svg, ladder_svg
from .tables import _ts
from .verdict import verdict
from .view import message_details, proposal_short

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#1b1b1b;padding:0 1em}
h1{font-size:1.4em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em}
code,.mono,td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
.verdict{font-size:1.15em;font-weight:600;padding:.6em .8em;border-radius:4px;background:#e8f5e9}
.verdict.sev-error{background:#fdecea;color:#8a1c1c}.verdict.sev-warning{background:#fff6e0;color:#6b4b00}
.findings{padding-left:1.6em}.finding summary{cursor:pointer}.finding dl{margin:.3em 0 .8em}
.finding dt{font-weight:600;float:left;width:6em;clear:left}.finding dd{margin-left:6.5em}
.sev{display:inline-block;width:5.5em;font-weight:700}.sev-error .sev{color:#b71c1c}
.sev-warning .sev{color:#9a6b00}.sev-info .sev{color:#00695c}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;
vertical-align:top}th{background:#f3f3f3;font-family:system-ui,sans-serif}td.n{text-align:right}
svg{display:block;margin:.5em 0;background:#fafafa;border:1px solid #e3e3e3;font:12px ui-monospace,monospace}
.lane{stroke:#888;stroke-width:2}.lane-head{font-weight:700}.lane-sub,.when,.tick{fill:#666}
.msg line{stroke:#1565c0;stroke-width:1.6}.msg polygon{fill:#1565c0}
.msg.retransmit line{stroke-dasharray:6 4;stroke:#ef6c00}.msg.retransmit polygon{fill:#ef6c00}
.msg.warn text{fill:#8a5a00}.msg.error line{stroke:#c62828}.msg.error polygon{fill:#c62828}
.msg.error text{fill:#c62828;font-weight:700}.lost line{stroke:#c62828;stroke-width:3}.lost text{fill:#c62828}
.pending text{fill:#8a5a00}
.active{fill:#90caf9}.gap{fill:#fff;stroke:#999;stroke-dasharray:3 2}.mark.replay{fill:#c62828}
.mark.reset{fill:#ef6c00}.mark.wrap{fill:#6a1b9a}.mark.icv{fill:#111}.bar{fill:#1565c0;fill-opacity:.75}.notes{fill:#333}.notes.bad{fill:#c62828}.axis{stroke:#999}
.legend span{margin-right:1.2em}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _finding(n: int, f: Finding, anchor: str) -> str:
    frames = ", ".join(map(str, f.frames[:25])) + (f" ... ({len(f.frames)} frames)" if len(f.frames) > 25 else "")
    rows = [("", f.explanation)]
    if f.frames:
        rows.append(("frames", frames))
    rows += [("evidence", ev) for ev in f.evidence]
    if f.cause:
        rows.append(("cause", f.cause))
    rows.append(("fix", f.remediation))
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    first = f" (frame {f.frames[0]})" if f.frames else ""
    return (
        f'<li class="finding sev-{f.severity.label}" id="{anchor}-finding-{n}" data-id="{_e(f.id)}">'
        f"<details{' open' if f.severity == Severity.ERROR else ''}><summary>"
        f'<span class="sev">{f.severity.label.upper()}</span> <code>[{_e(f.id)}]</code> {_e(f.title)}{_e(first)}'
        f"</summary><dl>{body}</dl></details></li>"
    )


def _table(head: list[str], rows: Iterable[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{_e(c)}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _decrypted(r: ChildSaRow) -> str:
    """Per way, what the terminal's ESP table says in its Decr column."""
    ways = []
    for f in r.flows:
        n = f"{f.decrypted}" + (f" ({f.integrity_failed} bad ICV)" if f.integrity_failed else "") if f.keys else "no key"
        ways.append(f"{'out' if f.src == r.src else 'in'} {n}")
    return ", ".join(ways) or "-"


def _child_rows(rows: list[ChildSaRow]) -> str:
    def owner(r: ChildSaRow) -> str:
        return "-" if r.ike_sa is None else r.ike_sa + (" (inferred)" if r.ike_sa_inferred else "")

    keys = any(f.keys for r in rows for f in r.flows)  # as the terminal: the column only with keys
    return _table(
        ["SPIs in/out", "IKE SA", "Mode", "Proposal", "TSi === TSr", "Out pkts/bytes", "In pkts/bytes",
         *(["Decrypted"] if keys else []), "First", "Last", "State"],  # fmt: skip
        (
            [
                r.spi_pair,
                owner(r),
                r.protocol if r.mode == "-" else f"{r.protocol} {r.mode}",
                r.proposal,
                f"{', '.join(r.ts_local) or '-'} === {', '.join(r.ts_remote) or '-'}",
                f"{r.packets_out} / {r.bytes_out}",
                f"{r.packets_in} / {r.bytes_in}",
                *([_decrypted(r)] if keys else []),
                _ts(r.first_ts),
                _ts(r.last_ts),
                r.state,
            ]
            for r in rows
        ),
    )


def _details(d: Json) -> str:
    """A message's decrypted facts as nested definition lists."""
    if not d:
        return "<em>no payload details (encrypted without keys, or none carried)</em>"
    items = []
    for k, v in d.items():
        if isinstance(v, dict):
            val = _details(v)
        elif isinstance(v, list):
            val = "<ul>" + "".join(f"<li>{_details(x) if isinstance(x, dict) else _e(x)}</li>" for x in v) + "</ul>"
        else:
            val = _e(v)
        items.append(f"<dt>{_e(k)}</dt><dd>{val}</dd>")
    return f"<dl>{''.join(items)}</dl>"


def _ike_sa(i: int, sa: IkeSaRecord, r: Report, errors: set[str]) -> str:
    msgs = []
    for e in sa.exchanges:
        for m in e.all_messages():
            who = "I -> R" if m.from_initiator else "R -> I"
            what = f"#{m.first_frame} {e.type} #{e.message_id} {'response' if m.is_response else 'request'} {who}"
            msgs.append(f"<li><details><summary>{_e(what)}</summary>{_details(message_details(m))}</details></li>")
    prop = proposal_short(sa.proposal) if sa.proposal else "-"
    state = sa.state + (f", inferred from {sa.state_evidence}" if sa.state_basis == "inferred" else "")
    return (
        f'<section class="ike-sa" data-ike-sa="{_e(sa.key)}"><h3>IKE SA {i}: {_e(sa.initiator[0])} -> '
        f"{_e(sa.responder[0])} (IKEv{sa.version}, {_e(state)})</h3>"
        f"<p class=mono>SPIs {_e(sa.key)}; proposal {_e(prop)}; NAT-T {'yes' if sa.nat_seen else 'no'}</p>"
        f"{ladder_svg(sa, r, errors)}"
        f"<details class=messages><summary>Messages and decrypted payloads</summary><ul>{''.join(msgs)}</ul></details>"
        "</section>"
    )


# ESP plots drawn per report at most: a flood of SPIs would otherwise make a file of
# thousands of drawings (issue 14); the table keeps every row.
PLOTS = 200


def _plots_shown(rows: list[ChildSaRow]) -> set[int]:
    """The rows to plot (by id): those with ICV failures, replays or missing packets first,
    then the busiest, at most PLOTS."""

    def rank(row: ChildSaRow) -> tuple[bool, int]:
        bad = any(f.integrity_failed or f.seq.replays or f.gaps for f in row.flows)
        return (not bad, -(row.packets_in + row.packets_out))

    return {id(row) for row in sorted(rows, key=rank)[:PLOTS]}


def _source_notes(s: SourceInfo) -> str:
    """The terminal header's Skipped, Truncated and Keys lines."""
    lines = [f"Skipped: {', '.join(f'{k} {v}' for k, v in sorted(s.skipped.items())) or 'none'}"]
    if s.truncated_files:
        lines.append(f"Truncated: {'; '.join(s.truncated_files)}")
    if s.keys_loaded:
        lines.append(f"Keys: {s.keys_loaded} key record(s) loaded")
    return "<p class=mono>" + "<br>".join(_e(x) for x in lines) + "</p>"


def report_section(r: Report, index: int) -> str:
    anchor = f"r{index}"
    v = verdict(r)
    sev = v.severity.label if v.severity is not None else "none"
    s = r.source
    out = [
        f'<section class="report" id="{anchor}" data-file="{_e(", ".join(s.files))}">',
        f"<h2>{_e(', '.join(s.files) or 'capture')}</h2>",
        f'<p class="verdict sev-{sev}">{_e(v.text)}</p>',
        f"<p class=mono>{_e(_ts(s.first_ts))} .. {_e(_ts(s.last_ts))}; {s.frames} frames, {s.ike_messages} IKE "
        f"messages, {s.esp_packets} ESP, {s.ah_packets} AH, {s.keepalives} NAT keepalives</p>",
        _source_notes(s),
        f"<h2>Findings ({len(r.findings)})</h2>",
    ]
    if r.findings:
        out.append('<ol class="findings">' + "".join(_finding(n, f, anchor) for n, f in enumerate(r.findings, 1)) + "</ol>")
    else:
        out.append("<p>None: the capture shows no problem ipsecdiag knows about.</p>")
    rows = child_sa_rows(r)
    if rows:
        out += ["<h2>CHILD SAs</h2>", _child_rows(rows)]
    if r.ike_sas:
        errors = {n for sa in r.ike_sas for n in sa.error_notifies}
        out.append("<h2>IKE SAs</h2>")
        out.append(
            '<p class="legend"><span>solid arrow: message</span><span>dashed orange: retransmission</span>'
            "<span>red cross: request never answered</span><span>amber …: the capture ended or paused "
            "before a response could show (not a failure)</span><span>hover an arrow for its payloads</span></p>"
        )
        out += [_ike_sa(i, sa, r, errors) for i, sa in enumerate(r.ike_sas, 1)]
    plotted = [row for row in rows if row.flows]
    if plotted:
        t_first = min(f.first_ts for row in plotted for f in row.flows)
        t_last = max(f.last_ts for row in plotted for f in row.flows)
        out.append("<h2>ESP traffic</h2>")
        out.append(
            '<p class="legend"><span>light blue: packets flowing</span><span>bars: packets per second'
            " (hover a bar for its count)</span><span>dashed: idle gap</span><span>red mark: replay</span>"
            "<span>black: ICV failure</span><span>orange: sequence reset</span><span>purple: ESN wrap</span></p>"
        )
        shown = _plots_shown(plotted)
        for row in plotted:
            if id(row) not in shown:
                continue
            ways = [("out" if f.src == row.src else "in", f) for f in row.flows]
            out.append(esp_plot_svg(f"CHILD SA {row.spi_pair} {row.src} <-> {row.dst}", ways, t_first, t_last))
        if len(plotted) > len(shown):
            out.append(
                f"<p class=legend>{len(plotted) - len(shown)} more CHILD SAs with traffic are not plotted "
                f"(the {PLOTS} with anomalies first, then the busiest, are); each is a row of the CHILD SA "
                "table above and is in the JSON report.</p>"
            )
    if r.ah_flows:
        out += [
            "<h2>AH flows</h2>",
            _table(
                ["SPI", "Src -> Dst", "Pkts", "ICV ok", "ICV bad"],
                ([f"{f.spi:08x}", f"{f.src} -> {f.dst}", str(f.packets), str(f.verified), str(f.integrity_failed)] for f in r.ah_flows),
                frozenset({2, 3, 4}),
            ),
        ]
    out.append("</section>")
    return "".join(out)


def render_html(reports: list[Report], *, title: str = "ipsecdiag report") -> str:
    """The whole document: no external resource, no script."""
    body = "".join(report_section(r, i) for i, r in enumerate(reports))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>\n"
    )

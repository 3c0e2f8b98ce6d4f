"""Scenario catalogue and :func:`record`: one strongSwan run -> pcap + charon logs.

Each :class:`Scenario` says what the recording shows and which findings ``ipsecdiag analyze``
must report for it (:class:`Expectation`, ids from the finding catalogue in DESIGN.md), so a
test can do::

    rec = record("ikev2-no-proposal", tmp_path)
    report = analyze(rec.pcap, keys=rec.initiator_log)
    assert rec.scenario.expect.check(report_findings) == []
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    CommandResult,
    Lab,
    NetOptions,
    PeerConfig,
    Pki,
    make_pki,
)

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Expectation:
    """Findings ``ipsecdiag analyze`` should produce (given the initiator's charon log as keys).

    ``required``: (id, severity) pairs that must be present. ``allowed``: ids that may appear
    with any severity (defensible either way). Any other finding must be at most
    ``max_other`` severe.
    """

    required: tuple[tuple[str, str], ...] = ()
    allowed: tuple[str, ...] = ()
    max_other: str = "info"

    def check(self, findings: Iterable[tuple[str, str]]) -> list[str]:
        """Problems with a list of (id, severity) findings; empty when they meet the expectation."""
        got = list(findings)
        problems = [f"missing {fid} ({sev})" for fid, sev in self.required if (fid, sev) not in got]
        required_ids = {fid for fid, _ in self.required}
        for fid, sev in got:
            if fid in required_ids or fid in self.allowed:
                continue
            if SEVERITY_RANK.get(sev, 2) > SEVERITY_RANK[self.max_other]:
                problems.append(f"unexpected {fid} ({sev})")
        return problems

    def describe(self) -> str:
        if not self.required:
            text = f"no finding above {self.max_other}"
        else:
            text = ", ".join(f"`{fid}` ({sev})" for fid, sev in self.required)
        if self.allowed:
            text += "; may also report " + ", ".join(f"`{a}`" for a in self.allowed)
        return text


# Forced UDP encapsulation (libipsec) makes both peers send random NAT-D source hashes; a tool
# may mention NAT/encapsulation at info level but must not call it a problem.
_ENCAP_INFO = ("nat-detected", "tunnel-mtu")


@dataclass(frozen=True)
class Scenario:
    name: str
    shows: str  # README: what the capture shows
    expect: Expectation
    initiator: PeerConfig = field(default_factory=PeerConfig)
    # None: no charon on the responder host; with net.block_ike it drops IKE silently,
    # without it the host answers ICMP port unreachable
    responder: PeerConfig | None = field(default_factory=PeerConfig)
    net: NetOptions = field(default_factory=NetOptions)
    certificates: bool = False
    padding_sans: int = 0  # extra SANs in the initiator certificate (big IKE_AUTH)
    pings: int = 10
    ping_interval: float = 0.2
    initiate_timeout: float = 20.0
    established: bool = True  # swanctl --initiate is expected to succeed


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "ikev2-psk-ok",
            "Healthy IKEv2 PSK tunnel: IKE aes256gcm16-prfsha256-ecp256, ESP aes256gcm16 "
            "(ESP-in-UDP, forced by the userspace ESP backend), 10 pings, DELETE at the end",
            Expectation(allowed=_ENCAP_INFO),
        ),
        Scenario(
            "ikev2-no-proposal",
            "Initiator offers only aes128-sha1-modp2048, responder accepts only "
            "aes256gcm16-prfsha384-ecp384: IKE_SA_INIT answered with N(NO_PROPOSAL_CHOSEN)",
            Expectation(required=(("ike-no-proposal-chosen", "error"),), allowed=("weak-crypto",)),
            initiator=PeerConfig(proposals="aes128-sha1-modp2048"),
            responder=PeerConfig(proposals="aes256gcm16-prfsha384-ecp384"),
            established=False,
        ),
        Scenario(
            "ikev2-invalid-ke",
            "Initiator guesses MODP-2048 first (aes256-sha256-modp2048-ecp256), responder prefers "
            "ECP-256: N(INVALID_KE_PAYLOAD) asking for group 19, second IKE_SA_INIT succeeds, 10 pings",
            Expectation(required=(("ke-group-mismatch", "warning"),), allowed=_ENCAP_INFO),
            initiator=PeerConfig(proposals="aes256-sha256-modp2048-ecp256"),
            responder=PeerConfig(proposals="aes256-sha256-ecp256-modp2048"),
        ),
        Scenario(
            "ikev2-unanswered",
            "IKE_SA_INIT to a responder whose host silently drops UDP 500/4500: the request and "
            "3 retransmissions (+1, +2.4, +4.4 s), then the initiator gives up",
            Expectation(required=(("ike-unanswered", "error"),)),
            responder=None,
            net=NetOptions(block_ike=True),
            established=False,
        ),
        Scenario(
            "ikev1-main-psk",
            "IKEv1 Main Mode PSK (aes256-sha256-modp2048) + Quick Mode ESP aes256-sha256 "
            "(ESP-in-UDP), 10 pings, DELETE at the end",
            Expectation(allowed=_ENCAP_INFO),
            initiator=PeerConfig(
                version=1, proposals="aes256-sha256-modp2048", esp_proposals="aes256-sha256"
            ),
            responder=PeerConfig(
                version=1, proposals="aes256-sha256-modp2048", esp_proposals="aes256-sha256"
            ),
        ),
        Scenario(
            "ikev2-auth-failed",
            "Pre-shared keys differ: the encrypted IKE_AUTH response carries only "
            "N(AUTHENTICATION_FAILED) (needs the log's keys to see it)",
            Expectation(required=(("auth-failed", "error"),), allowed=("missing-keys",)),
            responder=PeerConfig(psk="a-different-psk-on-the-responder"),
            established=False,
        ),
        Scenario(
            "ikev2-cbc-sha256-ok",
            "Healthy IKEv2 tunnel with CBC + HMAC: IKE aes128-sha256-modp2048, ESP aes128-sha256, 10 pings",
            Expectation(allowed=_ENCAP_INFO),
            initiator=PeerConfig(proposals="aes128-sha256-modp2048", esp_proposals="aes128-sha256"),
            responder=PeerConfig(proposals="aes128-sha256-modp2048", esp_proposals="aes128-sha256"),
        ),
        Scenario(
            "ikev2-ts-unacceptable",
            "IKE SA established, but the initiator asks for 10.3.0.0/24 behind the gateway while "
            "the responder only offers 10.2.0.0/24: N(TS_UNACCEPTABLE) in IKE_AUTH, no CHILD SA, then the lab's DELETE",
            Expectation(required=(("ts-unacceptable", "error"),), allowed=("missing-keys",)),
            initiator=PeerConfig(remote_ts="10.3.0.0/24"),
            established=False,
        ),
        Scenario(
            "ikev2-child-no-proposal",
            "IKE SA established, ESP proposals disjoint (initiator aes128-sha256, responder "
            "aes256gcm16): N(NO_PROPOSAL_CHOSEN) in the IKE_AUTH response, no CHILD SA, then the lab's DELETE",
            Expectation(required=(("child-no-proposal-chosen", "error"),), allowed=("missing-keys",)),
            initiator=PeerConfig(esp_proposals="aes128-sha256"),
            responder=PeerConfig(esp_proposals="aes256gcm16"),
            established=False,
        ),
        Scenario(
            "ikev2-frag-blackhole",
            "Certificate auth with a large initiator certificate, IKEv2 fragmentation off, "
            "client link MTU 1400, router drops IP fragments: the IP-fragmented IKE_AUTH is "
            "retransmitted (2 IP fragments each time) and never answered",
            Expectation(
                required=(("ike-fragment-loss", "error"),),
                allowed=("ike-fragmentation-unused", "ike-unanswered", "missing-keys"),
            ),
            initiator=PeerConfig(auth="pubkey", fragmentation="no"),
            responder=PeerConfig(auth="pubkey", fragmentation="no"),
            net=NetOptions(client_mtu=1400, drop_ip_fragments=True),
            certificates=True,
            padding_sans=40,
            established=False,
        ),
    )
}


@dataclass(frozen=True)
class Recording:
    """What :func:`record` wrote. Paths are inside ``outdir``; logs have the temp path replaced by ``<run>``."""

    scenario: Scenario
    outdir: Path
    pcap: Path
    initiator_log: Path
    responder_log: Path | None
    initiate: CommandResult
    ping: CommandResult | None
    terminate: CommandResult | None
    sas_initiator: str  # swanctl --list-sas after traffic
    sas_responder: str
    nft_ruleset: str  # router ruleset with counters (fragment drops), "" when none
    seconds: float

    @property
    def frames(self) -> int:
        return pcap_frame_count(self.pcap)


def pcap_frame_count(path: Path) -> int:
    """Number of records in a classic pcap file (either byte order)."""
    data = path.read_bytes()
    if len(data) < 24:
        return 0
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    count, off = 0, 24
    while off + 16 <= len(data):
        (incl_len,) = struct.unpack_from(endian + "I", data, off + 8)
        off += 16 + incl_len
        count += 1
    return count


def _sanitized_copy(src: Path, dst: Path, workdir: Path) -> Path:
    text = src.read_text(errors="replace") if src.exists() else ""
    dst.write_text(text.replace(str(workdir), "<run>"))
    return dst


def record(scenario: Scenario | str, outdir: Path) -> Recording:
    """Run one scenario in a fresh lab and write ``NAME.pcap``, ``NAME.charon.log`` (initiator),
    ``NAME.responder.log`` and ``NAME.session.txt`` (configs and swanctl/ping output) into ``outdir``."""
    scen = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    outdir = outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    pcap = outdir / f"{scen.name}.pcap"
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ipd-lab-") as tmp:
        work = Path(tmp)
        with Lab(work, scen.net) as lab:
            pki: Pki | None = None
            if scen.certificates:
                pki = make_pki(work / "pki", initiator_padding_sans=scen.padding_sans)
            if scen.responder is not None:
                lab.start_peer("responder", scen.responder, pki)
            lab.start_peer("initiator", scen.initiator, pki)
            lab.start_capture(pcap)
            time.sleep(0.2)
            initiate = lab.initiate(scen.initiate_timeout)
            ping = lab.ping(scen.pings, scen.ping_interval) if initiate.ok and scen.pings else None
            sas_i, sas_r = lab.list_sas("initiator"), lab.list_sas("responder")
            terminate = lab.terminate() if "ESTABLISHED" in sas_i else None
            time.sleep(0.3)  # let the DELETE response reach the capture
            lab.stop_capture()
            nft = lab.nft_ruleset() if scen.net.drop_ip_fragments or scen.net.nat else ""
            for peer in lab.peers.values():
                peer.stop()
            init_log = _sanitized_copy(
                work / "initiator/charon.log", outdir / f"{scen.name}.charon.log", work
            )
            resp_log = None
            if scen.responder is not None:
                resp_log = _sanitized_copy(
                    work / "responder/charon.log", outdir / f"{scen.name}.responder.log", work
                )
            session = [f"# {scen.name}: {scen.shows}"]
            for role, peer in lab.peers.items():
                for name in ("strongswan.conf", "swanctl/swanctl.conf"):
                    session += [f"\n## {role} {name}", (peer.directory / name).read_text()]
            for res in (initiate, ping, terminate):
                if res is not None:
                    session += [f"\n## {' '.join(res.argv)} -> rc {res.rc} ({res.seconds:.1f}s)", res.output]
            session += ["\n## initiator --list-sas", sas_i, "\n## responder --list-sas", sas_r]
            if nft:
                session += ["\n## router nft ruleset", nft]
            (outdir / f"{scen.name}.session.txt").write_text("\n".join(session).replace(str(work), "<run>"))
        if pki is not None:
            shutil.copy(pki.cert("ca"), outdir / f"{scen.name}.ca.crt")
    return Recording(
        scenario=scen,
        outdir=outdir,
        pcap=pcap,
        initiator_log=init_log,
        responder_log=resp_log,
        initiate=initiate,
        ping=ping,
        terminate=terminate,
        sas_initiator=sas_i,
        sas_responder=sas_r,
        nft_ruleset=nft,
        seconds=time.monotonic() - t0,
    )

"""ipsecdiag's own endpoint against strongSwan in the lab's namespaces (see :mod:`harness`).

``probe connect`` runs in the initiator namespace against a charon gateway in the responder
namespace; ``ipsecdiag responder`` runs in the responder namespace for a charon initiator.
Every command has a timeout; gateways are started and stopped by their Popen handles
(:class:`harness.Peer`), the responder by its own handle here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import CommandResult, Lab, LabError, Peer, PeerConfig, Pki, run
from swanconf import (
    DEFAULT_PSK,
    INITIATOR_ID,
    INITIATOR_NET,
    RESPONDER_ADDR,
    RESPONDER_ID,
    RESPONDER_NET,
)

ROOT = Path(__file__).resolve().parents[2]
IPSECDIAG = [sys.executable, "-m", "ipsecdiag"]


@dataclass
class ProbeRun:
    """One ``probe connect``: the command's result, its JSON and the files it wrote."""

    result: CommandResult
    doc: dict[str, Any]
    pcapng: Path

    @property
    def finding_ids(self) -> list[str]:
        return [f["id"] for f in self.doc.get("findings", [])]

    @property
    def keys(self) -> Path:
        return self.pcapng.with_name(self.pcapng.stem + ".keys.toml")

    @property
    def wireshark(self) -> Path:
        return self.pcapng.with_name(self.pcapng.stem + ".wireshark")


def start_gateway(lab: Lab, name: str, config: PeerConfig, pki: Pki | None = None) -> Peer:
    """A charon responder in the gateway namespace with its own instance directory ``name``."""
    return _start(lab, "responder", "gw", name, config, pki)


def start_initiator(lab: Lab, name: str, config: PeerConfig, pki: Pki | None = None) -> Peer:
    """A charon initiator in the client namespace with its own instance directory ``name``."""
    return _start(lab, "initiator", "cl", name, config, pki)


def _start(lab: Lab, role: str, ns: str, name: str, config: PeerConfig, pki: Pki | None) -> Peer:
    # A fresh directory per instance: a stale charon.vici of a stopped one would make
    # Peer.start think the new charon is already listening.
    old = lab.peers.get(role)
    if old is not None:
        old.stop()
    peer = Peer(role, lab.ns[ns], lab.workdir / name, config)
    lab.peers[role] = peer
    peer.start(pki)
    return peer


def psk_file(directory: Path, psk: str = DEFAULT_PSK) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / "psk.txt"
    p.write_text(psk + "\n")
    return p


def identities() -> list[str]:
    """The lab's identities and selectors as probe options (ours first, as charon expects)."""
    return ["--id", INITIATOR_ID, "--remote-id", RESPONDER_ID, "--ts", RESPONDER_NET, "--local-ts", INITIATOR_NET]


# Root without the capability to bind ports below 1024: what an unprivileged user gets.
NO_BIND_SERVICE = ("setpriv", "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service")


def probe(
    lab: Lab, outdir: Path, args: Sequence[str], *, timeout: float = 15.0, wrapper: Sequence[str] = ()
) -> ProbeRun:
    """``ipsecdiag probe connect`` to the gateway from the initiator namespace."""
    outdir.mkdir(parents=True, exist_ok=True)
    pcapng, js = outdir / "session.pcapng", outdir / "result.json"
    argv = ["ip", "netns", "exec", lab.ns["cl"], *wrapper, *IPSECDIAG, "probe", "connect", RESPONDER_ADDR]
    argv += [*args, "--timeout", f"{timeout:g}", "--write", str(pcapng), "--json", str(js)]
    # the probe's own bound plus its cleanup (3 s) and interpreter start-up
    result = run(argv, timeout=timeout + 15, check=False, env={"PYTHONPATH": str(ROOT)})
    doc = json.loads(js.read_text()) if js.exists() else {}
    return ProbeRun(result, doc, pcapng)


def analyze(pcapng: Path, keys: Path | None) -> dict[str, Any]:
    """``ipsecdiag analyze --json`` of a session the probe wrote (with its keys when it has any)."""
    argv = [*IPSECDIAG, "analyze", str(pcapng), "--json", "-", "--fail-on", "never"]
    if keys is not None:
        argv += ["--keys", str(keys)]
    out = run(argv, timeout=60, env={"PYTHONPATH": str(ROOT)})
    return json.loads(out.output[out.output.index("{") :])


def tshark_decrypted_ids(pcapng: Path, wireshark_dir: Path) -> set[str]:
    """The FQDN identities tshark shows after decrypting IKE_AUTH with our tables (they exist
    only inside the encrypted payload, so a non-empty answer means tshark decrypted it)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise LabError("tshark missing")
    env = {**os.environ, "WIRESHARK_CONFIG_DIR": str(wireshark_dir), "HOME": str(wireshark_dir)}
    argv = [tshark, "-n", "-r", str(pcapng), "-Y", "isakmp.id.data", "-T", "fields", "-E", "aggregator=,"]
    # stdout only: tshark warns on stderr when run as root
    out = subprocess.run(
        [*argv, "-e", "isakmp.id.data.fqdn"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return {name for line in out.split() for name in line.split(",") if name}


class Responder:
    """``ipsecdiag responder`` in the gateway namespace, stopped by its Popen handle."""

    def __init__(self, lab: Lab, outdir: Path, args: Sequence[str], *, timeout: float = 30.0) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        self.pcapng = outdir / "responder.pcapng"
        self.log = outdir / "responder.out"
        argv = ["ip", "netns", "exec", lab.ns["gw"], *IPSECDIAG, "responder", "--listen", RESPONDER_ADDR]
        argv += [*args, "--timeout", f"{timeout:g}", "--write", str(self.pcapng)]
        self._out = open(self.log, "wb")  # closed in stop()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.timeout = timeout
        deadline = time.monotonic() + 20
        while b"listening" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise LabError(f"ipsecdiag responder did not start: {self.output()[-500:]}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return 124

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._out.close()

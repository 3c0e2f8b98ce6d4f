"""Failing strongSwan exchanges recorded for the analysis tests (states, causes, failure pages).

One :func:`record` = one fresh :class:`harness.Lab`: both charons start (level-4 logs, so the
initiator's log holds every key), tcpdump runs on the router's initiator side, the initiator
starts connection ``c``, then an optional ``action`` (pings, a firewall rule, killing a peer)
runs before the capture stops. ``edits`` rewrites a role's generated swanctl.conf for what
:class:`swanconf.PeerConfig` cannot say (EAP on one side, a different trust anchor), and
:func:`eap_edits` is the EAP-MSCHAPv2 one.

Test tooling only; every wait is bounded (the harness's timeouts, ``swanctl --timeout``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import Lab, LabError, NetOptions, PeerConfig, Pki, _stop, run
from swanconf import CHARON_PLUGINS, INITIATOR_ID

# MSCHAPv2 (eap-mschapv2, Debian's libcharon-extauth-plugins) needs MD4 and DES: openssl gives both
EAP_PLUGINS = CHARON_PLUGINS + " eap-identity eap-mschapv2"
EAP_RIGHT_PASSWORD = "ipsecdiag-eap-right-7f3"


@dataclass(frozen=True)
class Rec:
    """What :func:`record` wrote (``NAME.pcap``, ``NAME.initiator.log``, ``NAME.responder.log``)."""

    name: str
    pcap: Path
    initiator_log: Path
    responder_log: Path
    initiated: bool
    initiate_output: str
    extra: Mapping[str, Any]  # whatever the action returned (e.g. ping output)


def plugin_available(name: str) -> bool:
    return Path(f"/usr/lib/ipsec/plugins/libstrongswan-{name}.so").exists()


def record(
    outdir: Path,
    name: str,
    *,
    initiator: PeerConfig,
    responder: PeerConfig,
    pki: Pki | None = None,
    edits: Mapping[str, list[tuple[str, str]]] | None = None,
    action: Callable[[Lab], Mapping[str, Any] | None] | None = None,
    net: NetOptions | None = None,
    initiate_timeout: float = 10.0,
) -> Rec:
    outdir = outdir.resolve()
    work = outdir / f"{name}.work"
    if work.exists():
        shutil.rmtree(work)  # a stale vici socket would make the harness think charon is up
    pcap = outdir / f"{name}.pcap"
    extra: Mapping[str, Any] = {}
    with Lab(work, net or NetOptions()) as lab:
        for role, cfg in (("responder", responder), ("initiator", initiator)):
            peer = lab.start_peer(role, cfg, pki)
            if edits and role in edits:
                conf = peer.directory / "swanctl" / "swanctl.conf"
                text = conf.read_text()
                for old, new in edits[role]:
                    if not old:
                        text += new
                        continue
                    if old not in text:
                        raise AssertionError(f"{role} swanctl.conf changed shape: no {old!r}")
                    text = text.replace(old, new)
                conf.write_text(text)
                peer.swanctl("--load-all", "--noprompt", check=True)
        lab.start_capture(pcap)
        time.sleep(0.2)
        res = lab.initiate(initiate_timeout)
        if action is not None:
            extra = action(lab) or {}
        time.sleep(0.3)  # the last answers reach the capture
        lab.stop_capture()
        for peer in lab.peers.values():
            peer.stop()
    logs = []
    for role in ("initiator", "responder"):
        logs.append(outdir / f"{name}.{role}.log")
        src = work / role / "charon.log"
        logs[-1].write_text(src.read_text(errors="replace") if src.exists() else "")
    return Rec(name, pcap, logs[0], logs[1], res.ok, res.output, extra)


def eap_edits(client_password: str) -> dict[str, list[tuple[str, str]]]:
    """The responder authenticates with its certificate and asks the client for EAP-MSCHAPv2
    (``eap_id = %any``, the user's password in its secrets); the client authenticates with EAP
    only, using ``client_password``. (An ``old`` of "" appends ``new``.)"""

    def secret(pw: str) -> str:
        return f'\nsecrets {{\n  eap-client {{\n    id = {INITIATOR_ID}\n    secret = "{pw}"\n  }}\n}}\n'

    return {
        "responder": [
            (
                f"remote {{\n      auth = pubkey\n      id = {INITIATOR_ID}",
                "remote {\n      auth = eap-mschapv2\n      eap_id = %any",
            ),
            ("", secret(EAP_RIGHT_PASSWORD)),
        ],
        "initiator": [
            (
                f"local {{\n      auth = pubkey\n      id = {INITIATOR_ID}\n      certs = initiator.crt",
                f"local {{\n      auth = eap-mschapv2\n      id = {INITIATOR_ID}",
            ),
            ("", secret(client_password)),
        ],
    }


def analyze_json(pcap: Path, *args: str, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
    """``ipsecdiag analyze PCAP ARGS --json -`` in a subprocess: exit status, report, stderr."""
    argv = [sys.executable, "-m", "ipsecdiag", "analyze", str(pcap), *args, "--json", "-"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        doc = {}
    return proc.returncode, doc, proc.stderr


# ---------------------------------------------------------------- libreswan pluto beside charon

# Debian 12's libreswan conflicts with strongswan-charon, so it is unpacked, not installed:
#   apt-get download libreswan libldns3 libevent-pthreads-2.1-7 libnss3-tools
#   for f in *.deb; do dpkg-deb -x "$f" "$IPSECDIAG_LIBRESWAN_ROOT"; done
LIBRESWAN_ROOT = Path(os.environ.get("IPSECDIAG_LIBRESWAN_ROOT", "/opt/ipsecdiag-libreswan"))


def libreswan_missing() -> str | None:
    """Why pluto cannot run here (None: it can)."""
    for rel in ("usr/libexec/ipsec/pluto", "usr/libexec/ipsec/whack", "usr/bin/certutil"):
        if not os.access(LIBRESWAN_ROOT / rel, os.X_OK):
            return f"libreswan not unpacked at {LIBRESWAN_ROOT} (no {rel}; set IPSECDIAG_LIBRESWAN_ROOT)"
    return None


class Pluto:
    """libreswan's pluto in a lab namespace and a private mount namespace (its own run dir over
    /run, the unpacked /usr/libexec over the host's for addconn), ``plutodebug="all crypt
    private"`` on stderr into ``pluto.log``. The Popen handle is pluto itself (sh execs it)."""

    def __init__(self, lab: Lab, short_ns: str, directory: Path, conn: str, secrets: str) -> None:
        self.dir = directory.resolve()
        for sub in ("run", "nss"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        conf = self.dir / "ipsec.conf"
        conf.write_text('config setup\n    plutodebug="all crypt private"\n    ikev1-policy=accept\n\n' + conn)
        sec = self.dir / "ipsec.secrets"
        sec.write_text(secrets)
        sec.chmod(0o600)
        self.env = {"LD_LIBRARY_PATH": str(LIBRESWAN_ROOT / "usr/lib/x86_64-linux-gnu")}
        run([str(LIBRESWAN_ROOT / "usr/bin/certutil"), "-N", "-d", f"sql:{self.dir}/nss", "--empty-password"], env=self.env)
        r = LIBRESWAN_ROOT
        script = (
            f'mount --bind "{self.dir}/run" /run && mount --bind "{r}/usr/libexec" /usr/libexec && '
            f'mkdir -p /run/pluto && export LD_LIBRARY_PATH="{r}/usr/lib/x86_64-linux-gnu" && exec "{r}/usr/libexec/ipsec/pluto" '
            f'--nofork --stderrlog --config "{conf}" --secretsfile "{sec}" --nssdir "{self.dir}/nss" --rundir /run/pluto'
        )
        argv = ["ip", "netns", "exec", lab.ns[short_ns], "unshare", "--mount", "--propagation", "private"]
        self._log = open(self.dir / "pluto.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen([*argv, "sh", "-c", script], stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        self.ctl = self.dir / "run" / "pluto" / "pluto.ctl"
        deadline = time.monotonic() + 10
        while not self.ctl.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise LabError(f"pluto did not start: {self.log.read_text(errors='replace')[-500:]}")
            time.sleep(0.05)
        time.sleep(0.5)  # addconn loads the connections after the socket appears

    @property
    def log(self) -> Path:
        return self.dir / "pluto.log"

    def whack(self, *args: str) -> None:
        run([str(LIBRESWAN_ROOT / "usr/libexec/ipsec/whack"), "--ctlsocket", str(self.ctl), *args], env=self.env, timeout=10)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM, grace=5.0)
        self._log.close()

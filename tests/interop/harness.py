"""strongSwan peers in throwaway network namespaces: topology, configs, capture and logs.

Test and sample-generation tooling only (never imported by the ``ipsecdiag`` package).

Topology (every address exists only inside the namespaces a :class:`Lab` creates; the
outer addresses are RFC 5737 documentation prefixes)::

    ns <tag>-cl (initiator)     ns <tag>-rt (router)                  ns <tag>-gw (responder)    ns <tag>-in
    lo  10.1.0.2/32 (inner)
    cl0 192.0.2.2/24 ==veth== rtc 192.0.2.1/24  rtg 198.51.100.1/24 ==veth== gw0 198.51.100.2/24
                                                                          gwi 10.2.0.1/24 ==veth== in0 10.2.0.10/24

Facts about charon that shape this module (strongSwan 5.9.8 on a kernel without xfrm ESP):

* ESP runs in userspace (kernel-libipsec plugin, TUN device ``ipsec0``), which only supports
  tunnel mode and always asks for UDP encapsulation: both peers send a random
  NAT_DETECTION_SOURCE_IP hash, IKE floats to port 4500 and ESP is ESP-in-UDP (RFC 3948).
* charon's PID file path is compiled in (``/var/run/charon.pid``), so every instance runs in a
  private mount namespace with its own directory bound over ``/run``.
* The initiator's remote traffic selector must not contain the responder's IKE address, hence
  the separate inner addresses (``10.1.0.2`` behind the initiator, ``10.2.0.0/24`` behind the
  responder).
* Keys only appear in charon's debug log (``ike=4``/``chd=4``); there is no save-keys plugin.

Every process is started by this module, tracked by its :class:`subprocess.Popen` handle and
stopped by that handle; every wait is bounded.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from swanconf import (
    DEFAULT_PSK,
    INITIATOR_ADDR,
    INITIATOR_ID,
    INITIATOR_INNER,
    INNER_HOST,
    RESPONDER_ADDR,
    RESPONDER_ID,
    RESPONDER_INNER_GW,
    ROUTER_CL_ADDR,
    ROUTER_GW_ADDR,
    NetOptions,
    PeerConfig,
    strongswan_conf,
    swanctl_conf,
)

__all__ = [
    "CHARON",
    "DEFAULT_PSK",
    "INITIATOR_ADDR",
    "INNER_HOST",
    "RESPONDER_ADDR",
    "CommandResult",
    "Lab",
    "LabError",
    "NetOptions",
    "Peer",
    "PeerConfig",
    "Pki",
    "make_pki",
    "missing_prerequisites",
    "run",
]

CHARON = Path("/usr/lib/ipsec/charon")
PKI_PLUGINS = "random openssl pem pkcs1 pkcs8 x509 gmp sha1 sha2 pubkey"

_lab_counter = itertools.count(1)


class LabError(RuntimeError):
    """The lab could not be set up or a step failed in a way that makes the recording useless."""


def missing_prerequisites(*, need_pki: bool = False, need_nft: bool = False) -> list[str]:
    """What is missing to run a lab here (empty list: all present)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root privileges")
    if not os.access(CHARON, os.X_OK):
        missing.append(str(CHARON))
    tools = ["swanctl", "tcpdump", "ip", "unshare", "ping"]
    if need_pki:
        tools.append("pki")
    if need_nft:
        tools.append("nft")
    missing += [t for t in tools if shutil.which(t) is None]
    if not os.path.exists("/dev/net/tun"):
        missing.append("/dev/net/tun")
    return missing


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    rc: int
    output: str  # stdout and stderr, interleaved
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0


def run(
    argv: Sequence[str],
    *,
    timeout: float = 15.0,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> CommandResult:
    """Run a command to completion within ``timeout`` seconds (rc 124 on timeout, like timeout(1))."""
    t0 = time.monotonic()
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(
            list(argv),
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )
        rc, out = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        rc = 124
        raw = exc.stdout or b""
        out = (
            raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        ) + f"\n[timeout after {timeout}s]"
    result = CommandResult(tuple(argv), rc, out, time.monotonic() - t0)
    if check and rc != 0:
        raise LabError(f"{' '.join(argv)} failed (rc {rc}): {out.strip()[-500:]}")
    return result


def _stop(proc: subprocess.Popen[bytes], sig: int, grace: float) -> None:
    """Signal a child we started (its PID cannot be reused before we reap it) and reap it."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    """A one-level lab CA and one end-entity certificate per role (PEM files in ``directory``)."""

    directory: Path

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def make_pki(
    directory: Path, *, bits: int = 2048, initiator_padding_sans: int = 0, key_type: str = "rsa"
) -> Pki:
    """CA + initiator/responder certificates made with strongSwan's ``pki``.

    ``initiator_padding_sans`` adds that many extra DNS subjectAltNames to the initiator's
    certificate: a cheap way to get a large IKE_AUTH without slow RSA-4096 key generation.
    """
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "pki.conf"
    conf.write_text(f"pki {{\n  load = {PKI_PLUGINS}\n}}\n")
    env = {"STRONGSWAN_CONF": str(conf)}
    pki = Pki(directory)
    dn = "C=XX, O=ipsecdiag samples"

    def gen(name: str) -> None:
        # key_type "ecdsa" with bits 256/384/521 gives the NIST curves
        out = run(["pki", "--gen", "--type", key_type, "--size", str(bits), "--outform", "pem"], env=env)
        pki.key(name).write_text(out.output)

    gen("ca")
    out = run(
        [
            "pki",
            "--self",
            "--ca",
            "--lifetime",
            "3650",
            "--in",
            str(pki.key("ca")),
            "--dn",
            f"{dn}, CN=Sample CA",
        ]
        + ["--outform", "pem"],
        env=env,
    )
    pki.cert("ca").write_text(out.output)
    for role, ident, flag in (
        ("initiator", INITIATOR_ID, "clientAuth"),
        ("responder", RESPONDER_ID, "serverAuth"),
    ):
        gen(role)
        sans = ["--san", ident]
        if role == "initiator":
            for i in range(initiator_padding_sans):
                sans += ["--san", f"pad{i:03d}.{ident}"]
        argv = ["pki", "--issue", "--cacert", str(pki.cert("ca")), "--cakey", str(pki.key("ca"))]
        argv += [
            "--in",
            str(pki.key(role)),
            "--type",
            "priv",
            "--lifetime",
            "365",
            "--dn",
            f"{dn}, CN={ident}",
        ]
        argv += [*sans, "--flag", flag, "--outform", "pem"]
        pki.cert(role).write_text(run(argv, env=env).output)
    return pki


# ---------------------------------------------------------------- charon instances


@dataclass
class Peer:
    """A running charon in its own network and mount namespace."""

    role: str
    netns: str
    directory: Path
    config: PeerConfig
    proc: subprocess.Popen[bytes] | None = None
    _out: IO[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.directory / "charon.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _swanctl_env(self) -> dict[str, str]:
        return {
            "STRONGSWAN_CONF": str(self.directory / "strongswan.conf"),
            "SWANCTL_DIR": str(self.directory / "swanctl"),
        }

    def swanctl(self, *args: str, timeout: float = 15.0, check: bool = False) -> CommandResult:
        # unix sockets are reached through the file system, so swanctl needs no namespace
        return run(["swanctl", *args], timeout=timeout, check=check, env=self._swanctl_env())

    def start(self, pki: Pki | None = None, *, timeout: float = 10.0) -> None:
        d = self.directory
        for sub in ("run", "swanctl/x509", "swanctl/x509ca", "swanctl/private"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "strongswan.conf").write_text(strongswan_conf(self.config, d))
        (d / "swanctl" / "swanctl.conf").write_text(swanctl_conf(self.config, self.role))
        if self.config.auth == "pubkey":
            if pki is None:
                raise LabError(f"{self.role}: pubkey auth needs a Pki")
            shutil.copy(pki.cert("ca"), d / "swanctl/x509ca/ca.crt")
            shutil.copy(pki.cert(self.role), d / f"swanctl/x509/{self.role}.crt")
            shutil.copy(pki.key(self.role), d / f"swanctl/private/{self.role}.key")
        # Private mount namespace: our run dir over /run catches the hard-coded charon.pid.
        # ip netns exec, unshare (no --fork) and sh's final exec all keep the PID, so
        # self.proc.pid ends up being charon itself.
        script = 'mount --bind "$1" /run && exec env STRONGSWAN_CONF="$2" "$3"'
        argv = ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "private"]
        argv += ["sh", "-c", script, "sh", str(d / "run"), str(d / "strongswan.conf"), str(CHARON)]
        self._out = open(d / "charon.out", "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT
        )
        sock = d / "run" / "charon.vici"
        deadline = time.monotonic() + timeout
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = (d / "charon.out").read_text(errors="replace")
                raise LabError(f"charon ({self.role}) did not start: {out.strip()[-500:]}")
            time.sleep(0.05)
        self.swanctl("--load-all", "--noprompt", check=True)

    def list_sas(self) -> str:
        if not self.running:
            return ""
        return self.swanctl("--list-sas", timeout=10).output

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig, grace=5.0)
        if self._out is not None:
            self._out.close()
            self._out = None


# ---------------------------------------------------------------- the lab


class Lab:
    """Namespaces, links and routes for one run; a context manager that always cleans up.

    ``Lab(workdir, NetOptions(...))`` creates four namespaces named ``ipd-<pid>-<n>-{cl,rt,gw,in}``
    so parallel runs never clash. Instance directories, logs and configs go under ``workdir``.
    """

    def __init__(self, workdir: Path, net: NetOptions | None = None) -> None:
        self.workdir = workdir.resolve()
        self.net = net or NetOptions()
        self.tag = f"ipd-{os.getpid()}-{next(_lab_counter)}"
        self.ns = {short: f"{self.tag}-{short}" for short in ("cl", "rt", "gw", "in")}
        self.peers: dict[str, Peer] = {}
        self._created: list[str] = []
        self._capture: subprocess.Popen[bytes] | None = None
        self._capture_files: list[IO[bytes]] = []

    # -- lifecycle
    def __enter__(self) -> Lab:
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop capture and charons we started, delete the namespaces we created. Idempotent."""
        self.stop_capture()
        for peer in self.peers.values():
            peer.stop()
        for ns in reversed(self._created):
            run(["ip", "netns", "del", ns], check=False, timeout=10)
        self._created.clear()
        atexit.unregister(self.close)

    def _ip_batch(self, ns: str | None, commands: str) -> None:
        argv = ["ip", "-batch", "-"] if ns is None else ["ip", "-n", ns, "-batch", "-"]
        run(argv, stdin=commands)

    def _build(self) -> None:
        cl, rt, gw, inner = (self.ns[s] for s in ("cl", "rt", "gw", "in"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        for ns in (cl, rt, gw, inner):
            run(["ip", "netns", "add", ns])
            self._created.append(ns)
            # no IPv6 (keeps captures free of RS/ND/MLD noise); set before links exist
            keys = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
            if ns in (rt, gw):
                keys.append("net.ipv4.ip_forward=1")
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", *keys])
        self._ip_batch(
            None,
            f"link add cl0 netns {cl} type veth peer name rtc netns {rt}\n"
            f"link add gw0 netns {gw} type veth peer name rtg netns {rt}\n"
            f"link add gwi netns {gw} type veth peer name in0 netns {inner}\n",
        )
        mtu = self.net.client_mtu
        self._ip_batch(
            cl,
            f"link set lo up\naddr add {INITIATOR_INNER}/32 dev lo\naddr add {INITIATOR_ADDR}/24 dev cl0\n"
            f"link set cl0 mtu {mtu} up\nroute add default via {ROUTER_CL_ADDR}\n",
        )
        self._ip_batch(
            rt,
            f"link set lo up\naddr add {ROUTER_CL_ADDR}/24 dev rtc\naddr add {ROUTER_GW_ADDR}/24 dev rtg\n"
            f"link set rtc mtu {mtu} up\nlink set rtg up\n",
        )
        self._ip_batch(
            gw,
            f"link set lo up\naddr add {RESPONDER_ADDR}/24 dev gw0\naddr add {RESPONDER_INNER_GW}/24 dev gwi\n"
            f"link set gw0 up\nlink set gwi up\nroute add default via {ROUTER_GW_ADDR}\n",
        )
        self._ip_batch(
            inner,
            f"link set lo up\naddr add {INNER_HOST}/24 dev in0\nlink set in0 up\nroute add default via {RESPONDER_INNER_GW}\n",
        )
        if self.net.nat:
            self.nft(
                rt,
                "ipd_nat",
                "type nat hook postrouting priority srcnat",
                f'oifname "rtg" ip saddr {INITIATOR_ADDR} masquerade random',
            )
        if self.net.drop_ip_fragments:
            # priority -450: before conntrack defragments (-400), so the rule sees each fragment
            self.nft(
                rt,
                "ipd_frag",
                "type filter hook prerouting priority -450",
                "ip frag-off & 0x3fff != 0 counter drop",
            )
        if self.net.block_ike:
            self.nft(
                gw, "ipd_block", "type filter hook input priority 0", "udp dport { 500, 4500 } counter drop"
            )
        ping = run(
            ["ip", "netns", "exec", cl, "ping", "-n", "-c1", "-W2", RESPONDER_ADDR], check=False, timeout=5
        )
        if not ping.ok:
            raise LabError(f"initiator cannot reach the responder host: {ping.output.strip()}")

    def nft(self, ns: str, table: str, hook: str, rule: str) -> None:
        """Add a one-rule base chain ``table``/``c`` (accept policy) in namespace ``ns``."""
        ruleset = f"table ip {table} {{\n  chain c {{\n    {hook}; policy accept;\n    {rule}\n  }}\n}}\n"
        run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=ruleset)

    def nft_ruleset(self, short: str = "rt") -> str:
        """The ruleset with its counters (e.g. how many IP fragments the router dropped)."""
        return run(["ip", "netns", "exec", self.ns[short], "nft", "list", "ruleset"], check=False).output

    # -- peers
    def start_peer(self, role: str, config: PeerConfig, pki: Pki | None = None) -> Peer:
        """Start charon for ``role`` ("initiator" in ns cl, "responder" in ns gw) and load its config."""
        netns = self.ns["cl" if role == "initiator" else "gw"]
        peer = Peer(role, netns, self.workdir / role, config)
        self.peers[role] = peer
        peer.start(pki)
        return peer

    def peer(self, role: str) -> Peer:
        try:
            return self.peers[role]
        except KeyError:
            raise LabError(f"no {role} charon in this lab") from None

    def initiate(self, timeout: float = 20.0) -> CommandResult:
        """``swanctl --initiate`` of child ``net`` on the initiator; rc != 0 when it failed."""
        return self.peer("initiator").swanctl(
            "--initiate", "--ike", "c", "--child", "net", "--timeout", str(int(timeout)), timeout=timeout + 5
        )

    def terminate(self, timeout: float = 10.0) -> CommandResult:
        return self.peer("initiator").swanctl(
            "--terminate", "--ike", "c", "--timeout", str(int(timeout)), timeout=timeout + 5
        )

    def list_sas(self, role: str) -> str:
        peer = self.peers.get(role)
        return peer.list_sas() if peer else ""

    def ping(self, count: int = 10, interval: float = 0.2) -> CommandResult:
        """Ping the inner host from the initiator's inner address, i.e. through the tunnel."""
        argv = ["ip", "netns", "exec", self.ns["cl"], "ping", "-n", "-c", str(count), "-i", str(interval)]
        argv += ["-W", "1", "-I", INITIATOR_INNER, INNER_HOST]
        return run(argv, check=False, timeout=count * interval + 5)

    # -- capture
    def start_capture(self, pcap: Path, iface: str = "rtc", timeout: float = 5.0) -> None:
        """tcpdump on a router interface (default: the initiator side) into ``pcap``.

        tcpdump writes to stdout, so its privilege drop to user ``tcpdump`` cannot hit
        directory permissions.
        """
        if self._capture is not None:
            raise LabError("a capture is already running")
        pcap.parent.mkdir(parents=True, exist_ok=True)
        err_path = self.workdir / "tcpdump.err"
        out, err = open(pcap, "wb"), open(err_path, "wb")  # closed in stop_capture()
        self._capture_files = [out, err]
        argv = ["ip", "netns", "exec", self.ns["rt"], "tcpdump", "-i", iface, "-s", "0", "-n", "-U"]
        argv += ["--immediate-mode", "-w", "-"]
        self._capture = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while b"listening on" not in err_path.read_bytes():
            if self._capture.poll() is not None or time.monotonic() > deadline:
                msg = err_path.read_text(errors="replace").strip()
                self.stop_capture()
                raise LabError(f"tcpdump did not start: {msg}")
            time.sleep(0.05)

    def stop_capture(self) -> None:
        if self._capture is not None:
            _stop(self._capture, signal.SIGINT, grace=5.0)
            self._capture = None
        for f in self._capture_files:
            f.close()
        self._capture_files = []

"""Record charon (initiator, interop harness) against libreswan pluto (responder) with keys logged.

Usage (root): python record_pluto.py OUT CHARON_IKE CHARON_ESP PLUTO_IKE PLUTO_ESP [LSW_ROOT]

LSW_ROOT (default /tmp/lsw/root) holds Debian's libreswan .deb and the libraries it lacks,
unpacked with ``dpkg-deb -x`` (the libreswan package conflicts with strongswan-charon). pluto
runs in the responder namespace inside a private mount namespace with its own run directory.
Writes OUT/capture.pcap, OUT/lab/initiator/charon.log and OUT/pluto/pluto.out.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "interop"))
from harness import DEFAULT_PSK, Lab, PeerConfig, run
from swanconf import INITIATOR_ID, INITIATOR_NET, RESPONDER_ADDR, RESPONDER_ID, RESPONDER_NET


def pluto_conf(d: Path, ike: str, esp: str) -> str:
    return f"""config setup
    plutodebug="all crypt private"
    logfile={d}/pluto.log
    logtime=yes
    logappend=no

conn c
    ikev2=insist
    authby=secret
    left={RESPONDER_ADDR}
    leftid=@{RESPONDER_ID}
    leftsubnet={RESPONDER_NET}
    right=%any
    rightid=@{INITIATOR_ID}
    rightsubnet={INITIATOR_NET}
    ike={ike}
    esp={esp}
    auto=add
"""


def start_pluto(lab: Lab, d: Path, root: Path, ike: str, esp: str) -> subprocess.Popen[bytes]:
    for sub in ("run", "nss", "etc"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "etc/ipsec.conf").write_text(pluto_conf(d, ike, esp))
    secrets = d / "etc/ipsec.secrets"
    secrets.write_text(f'@{RESPONDER_ID} @{INITIATOR_ID} : PSK "{DEFAULT_PSK}"\n')
    secrets.chmod(0o600)
    libs = root / "usr/lib/x86_64-linux-gnu"
    run([str(root / "usr/bin/certutil"), "-N", "-d", f"sql:{d}/nss", "--empty-password"], env={"LD_LIBRARY_PATH": str(libs)})
    # pluto starts /usr/libexec/ipsec/addconn: bind the unpacked one over the host's path.
    script = f"""set -e
mount --bind {d}/run /run
mkdir -p /usr/libexec/ipsec
mount --bind {root}/usr/libexec/ipsec /usr/libexec/ipsec
mkdir -p /run/pluto
export LD_LIBRARY_PATH={libs}
exec {root}/usr/libexec/ipsec/pluto --nofork --config {d}/etc/ipsec.conf --secretsfile {secrets} \\
    --nssdir {d}/nss --rundir /run/pluto --stderrlog
"""
    (d / "start.sh").write_text(script)
    argv = ["ip", "netns", "exec", lab.ns["gw"], "unshare", "--mount", "--propagation", "private"]
    with open(d / "pluto.out", "wb") as out:
        return subprocess.Popen(argv + ["sh", str(d / "start.sh")], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    ike, esp, lsw_ike, lsw_esp = sys.argv[2:6]
    root = Path(sys.argv[6] if len(sys.argv) > 6 else "/tmp/lsw/root")
    with Lab(out / "lab") as lab:
        pluto = start_pluto(lab, out / "pluto", root, lsw_ike, lsw_esp)
        try:
            time.sleep(3)
            lab.start_peer("initiator", PeerConfig(proposals=ike, esp_proposals=esp))
            lab.start_capture(out / "capture.pcap")
            print("initiate rc", lab.initiate(timeout=15).rc)
            time.sleep(1)
            lab.terminate()
            time.sleep(0.5)
            lab.stop_capture()
        finally:
            if pluto.poll() is None:
                pluto.send_signal(signal.SIGTERM)
                try:
                    pluto.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pluto.kill()
                    pluto.wait(timeout=5)


if __name__ == "__main__":
    main()

"""The analysis options: one frozen value built by the CLI (or a caller), read by every stage.

Each default is defined here and nowhere else; the reconstruction, decryption and diagnosis
stages read the fields, never a dict. ``--replay-window`` and friends map one to one.
"""

from __future__ import annotations

from dataclasses import dataclass

IKE_PORT = 500
NATT_PORT = 4500


@dataclass(frozen=True)
class AnalysisOptions:
    """What a user can tune about one analysis.

    ike_ports / natt_ports: UDP ports carrying IKE and NAT-T (500 and 4500 always included).
    replay_window: the receiver anti-replay window modelled for ESP (RFC 4303 §3.4.3).
    dup_seconds: a repeat of an ESP packet within this time is a capture artefact (a mirror
        port copying both directions), not a replay.
    natt_idle_timeout: seconds of silence after which a NAT may drop a UDP mapping; the ESP
        tracker records flow gaps this long and the NAT-T check judges keepalives by it.
    path_mtu: the path MTU to compute the tunnel MTU / MSS for (None: ICMP or 1500).
    ca_files: CA certificate files naming the CAs peers request (CERTREQ).
    churn_window: seconds within which repeated DELETEs / reconnects count as one burst.
    seq_exhaustion_margin: how close to 2^32 a non-ESN sequence number must get to warn.
    esp_timeline: keep each ESP flow's packets-over-time histogram (reconstruction/timeline.py)
        for the HTML report's plots; off by default, it costs a call per ESP packet.
    """

    ike_ports: tuple[int, ...] = (IKE_PORT,)
    natt_ports: tuple[int, ...] = (NATT_PORT,)
    replay_window: int = 64
    dup_seconds: float = 0.001
    natt_idle_timeout: float = 30.0
    path_mtu: int | None = None
    ca_files: tuple[str, ...] = ()
    churn_window: float = 60.0
    seq_exhaustion_margin: int = 1 << 24
    esp_timeline: bool = False

    def __post_init__(self) -> None:
        # The standard ports are always included, sorted, without duplicates.
        object.__setattr__(self, "ike_ports", tuple(sorted({IKE_PORT, *self.ike_ports})))
        object.__setattr__(self, "natt_ports", tuple(sorted({NATT_PORT, *self.natt_ports})))
        object.__setattr__(self, "ca_files", tuple(str(p) for p in self.ca_files))
        if self.replay_window < 1:
            raise ValueError("replay window must be at least 1")
        if self.natt_idle_timeout <= 0:
            raise ValueError("NAT idle timeout must be positive")
        if self.path_mtu is not None and not 576 <= self.path_mtu <= 65535:
            raise ValueError("path MTU must be within 576..65535")


DEFAULT_OPTIONS = AnalysisOptions()

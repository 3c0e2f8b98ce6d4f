"""The finding catalogue and the Notify knowledge base: meaning, common causes, fixes, RFCs.

Checks take titles and default texts from here so that ``ipsecdiag explain ID`` and the
findings in a report say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..reconstruction.model import Severity


@dataclass(frozen=True)
class CatalogueEntry:
    id: str
    severity: Severity
    title: str
    meaning: str
    causes: str
    remediation: str
    references: str = ""


E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

_ENTRIES = [
    CatalogueEntry(
        "ike-no-proposal-chosen",
        E,
        "IKE SA proposal mismatch (NO_PROPOSAL_CHOSEN)",
        "The responder accepted none of the IKE SA proposals the initiator offered in IKE_SA_INIT "
        "(or IKEv1 Main/Aggressive Mode) and answered with NO_PROPOSAL_CHOSEN.",
        "The two peers have no encryption/integrity/PRF/key-exchange combination in common: "
        "typically one side was hardened (AES-GCM, ECP-384) while the other still offers legacy "
        "algorithms (3DES, SHA-1, MODP-1024).",
        "Make the proposal lists overlap. In strongSwan set `proposals = aes256gcm16-prfsha384-ecp384` "
        "(or a list that includes what the peer offers) in the connection of swanctl.conf; in libreswan "
        "`ike=aes_gcm256-sha2_384;dh20`.",
        "RFC 7296 §2.7, §3.10.1",
    ),
    CatalogueEntry(
        "child-no-proposal-chosen",
        E,
        "CHILD SA proposal mismatch",
        "The IKE SA was set up, but the responder rejected every ESP/AH proposal for the CHILD SA "
        "(NO_PROPOSAL_CHOSEN inside IKE_AUTH or CREATE_CHILD_SA).",
        "ESP algorithms differ between the peers, or one side requires PFS (a KE transform) or "
        "ESN that the other does not offer.",
        "Align the `esp_proposals` of the CHILD SA (strongSwan) or `esp=`/`phase2alg=` (libreswan); "
        "include or exclude the DH group consistently for PFS and the ESN setting on both sides.",
        "RFC 7296 §1.3, §2.7",
    ),
    CatalogueEntry(
        "ke-group-mismatch",
        W,
        "Key exchange group mismatch (INVALID_KE_PAYLOAD)",
        "The initiator guessed a Diffie-Hellman/key-exchange group for its KE payload that the responder "
        "does not want; the responder named the group it prefers in INVALID_KE_PAYLOAD.",
        "The initiator's first proposal lists a different group first than the one the responder "
        "prefers. If the retry succeeded this only costs a round trip; if not, the peers share no group.",
        "Put the group the responder prefers first in the initiator's proposal (e.g. `ecp256` first in "
        "strongSwan's `proposals`), or make the responder accept the initiator's first group.",
        "RFC 7296 §1.2, §3.10.1",
    ),
    CatalogueEntry(
        "auth-failed",
        E,
        "Authentication failed (AUTHENTICATION_FAILED)",
        "One peer rejected the other's AUTH payload: the pre-shared key, signature or EAP exchange did "
        "not verify, or no matching peer configuration was found for the presented identities.",
        "Mismatched pre-shared keys, identities (IDi/IDr) that do not match the peer's configuration, "
        "untrusted or invalid certificates, or wrong EAP credentials.",
        "Check that both sides use the same PSK for the identities shown, that local/remote ids "
        "(`id =` in swanctl.conf, `leftid=`/`rightid=` in libreswan) match what the peer sends, and that "
        "the CA and certificate chain are trusted.",
        "RFC 7296 §2.15, §3.10.1",
    ),
    CatalogueEntry(
        "ts-unacceptable",
        E,
        "Traffic selectors unacceptable (TS_UNACCEPTABLE)",
        "The responder found no overlap between the traffic selectors the initiator proposed and its "
        "own policy, so no CHILD SA was created.",
        "The subnets configured on the two sides differ (proxy-ID mismatch), e.g. a /24 against a /16 "
        "where the responder will not narrow, or different protocols/ports.",
        "Make `local_ts`/`remote_ts` (strongSwan) or `leftsubnet`/`rightsubnet` (libreswan) mirror each "
        "other on the two gateways.",
        "RFC 7296 §2.9",
    ),
    CatalogueEntry(
        "ikev1-exchange-stopped",
        E,
        "IKEv1 exchange stopped part way",
        "An IKEv1 Main Mode, Aggressive Mode or Quick Mode exchange was answered, but one side never "
        "sent the next message, so the exchange did not complete and no SA exists on either side.",
        "The side that stopped could not process the last message: most often a phase 2 policy or "
        "proposal it refused without saying so (strongSwan/libreswan log it), keys or a PSK it could "
        "not verify the HASH with, or a crash; a firewall dropping one direction after the first "
        "messages also fits.",
        "Read the log of the side that stopped around the time of the last message (charon/pluto say "
        "why they dropped it) and compare the phase 2 settings (`esp=`/`phase2alg=`, `pfs`, subnets) of "
        "both peers.",
        "RFC 2409 §5, §5.5",
    ),
    CatalogueEntry(
        "ts-narrowed",
        INFO,
        "Traffic selectors narrowed",
        "The responder accepted the CHILD SA but returned traffic selectors that cover less than the "
        "initiator asked for (RFC 7296 §2.9); the CHILD SA was created with the narrower selectors.",
        "The initiator asked for a wider range than the responder's policy serves: often on purpose "
        "(an initiator that asks for everything and lets the gateway narrow), sometimes a subnet "
        "configured wider on one side.",
        "Nothing if the dropped ranges need no tunnel; otherwise extend the responder's "
        "`local_ts`/`remote_ts` (libreswan `leftsubnet`/`rightsubnet`), or configure the initiator with "
        "exactly the accepted selectors so both sides agree.",
        "RFC 7296 §2.9",
    ),
    CatalogueEntry(
        "error-notify",
        E,
        "Error notification",
        "A peer sent an error Notify that aborted an exchange.",
        "Depends on the notify; see its description.",
        "See the notify-specific advice.",
        "RFC 7296 §3.10.1",
    ),
    CatalogueEntry(
        "ike-unanswered",
        E,
        "IKE requests never answered",
        "Requests were sent (and retransmitted) but no response appears in the capture.",
        "The peer is down or not listening, UDP 500/4500 is filtered on the path, the peer drops the "
        "request silently (unknown peer, rate limiting), or the responses are lost before the capture point.",
        "Check that the peer runs and listens on UDP 500 and 4500, that firewalls and cloud security "
        "groups allow UDP 500/4500 (and ESP) both ways, and capture on the peer's side to see whether "
        "the requests arrive.",
        "RFC 7296 §2.1, §2.4",
    ),
    CatalogueEntry(
        "natt-port-blocked",
        E,
        "UDP 4500 blocked after NAT-T floating",
        "IKE_SA_INIT on UDP 500 was answered, but after the switch to UDP 4500 nothing came back.",
        "A firewall allows UDP 500 but not UDP 4500.",
        "Allow UDP 4500 in both directions between the peers.",
        "RFC 3948, RFC 7296 §2.23",
    ),
    CatalogueEntry(
        "ike-redirected",
        INFO,
        "IKE SA redirected to another gateway (REDIRECT)",
        "The responder answered IKE_SA_INIT with a REDIRECT notify naming another gateway: the "
        "client is to start again there (a deliberate hand-off, not a failure).",
        "A gateway cluster balancing its load, a gateway taken down for maintenance, or a gateway "
        "that serves this client elsewhere (strongSwan redirect plugins, RFC 5685 load balancers).",
        "Nothing to fix on the redirecting gateway. If the IKE SA with the new gateway fails, "
        "diagnose that one; a client that does not follow redirects must announce no "
        "REDIRECT_SUPPORTED.",
        "RFC 5685 §3, §4",
    ),
    CatalogueEntry(
        "nat-detected",
        INFO,
        "NAT between the peers",
        "The NAT detection hashes do not match the addresses seen in the capture: a NAT device "
        "translated addresses or ports between the peers.",
        "A NAT router, carrier-grade NAT or a cloud 1:1 NAT sits on the path.",
        "Nothing to fix if NAT traversal works; make sure UDP 4500 is open and keepalives are enabled.",
        "RFC 7296 §2.23, RFC 3947",
    ),
    CatalogueEntry(
        "natt-not-used",
        E,
        "NAT detected but ESP sent unencapsulated",
        "NAT was detected, yet ESP is sent as IP protocol 50, which a NAT (without ESP passthrough) "
        "cannot translate.",
        "A peer has NAT-T disabled or ignores the detection result.",
        "Enable NAT traversal (strongSwan does by default; check `encap`), or remove the NAT.",
        "RFC 3948",
    ),
    CatalogueEntry(
        "natt-keepalive-missing",
        W,
        "NAT keepalives missing",
        "A UDP-encapsulated SA stays idle longer than typical NAT mapping timeouts without NAT "
        "keepalives, so the NAT binding may expire and traffic from the far side gets dropped.",
        "Keepalives disabled or set to an interval longer than the NAT's UDP timeout.",
        "Enable NAT keepalives (strongSwan `charon.keep_alive = 20s`, libreswan `nat-keepalive=yes`, "
        "`keep-alive=20`).",
        "RFC 3948 §4",
    ),
    CatalogueEntry(
        "esp-one-way",
        E,
        "ESP flows in one direction only",
        "ESP packets of an SA pair are seen in one direction but not the other.",
        "ESP or UDP 4500 is filtered in one direction, the peer has no matching inbound SA "
        "(SPI unknown), routing sends return traffic elsewhere, or the far side has no traffic to send.",
        "Check firewalls for IP protocol 50 / UDP 4500 in the silent direction, the peer's SA "
        "counters (`swanctl --list-sas`, `ip -s xfrm state`), and the return route for the protected subnet.",
        "RFC 4303",
    ),
    CatalogueEntry(
        "esp-missing",
        W,
        "CHILD SA established but no ESP",
        "A CHILD SA was negotiated but no ESP packet with its SPIs appears in the capture.",
        "No traffic matched the policy, ESP is filtered, or the capture point does not see it.",
        "Send traffic that matches the traffic selectors and check routing and firewalls for ESP/UDP 4500.",
        "",
    ),
    CatalogueEntry(
        "esp-unknown-spi",
        W,
        "ESP for an unknown SPI",
        "ESP arrived for an SPI that no captured exchange created, or a peer reported INVALID_SPI.",
        "The SA was negotiated before the capture started, or one peer lost its SA (restart, expiry) "
        "while the other keeps sending.",
        "If a peer reports INVALID_SPI, restart the tunnel on the sending side and enable DPD so stale "
        "SAs are cleaned up.",
        "RFC 7296 §2.21.4",
    ),
    CatalogueEntry(
        "dpd-timeout",
        E,
        "Dead peer: liveness checks unanswered",
        "Liveness checks (empty INFORMATIONAL requests, or IKEv1 R_U_THERE) went unanswered until the "
        "SA was torn down.",
        "The peer crashed or restarted, or the path broke.",
        "Investigate the peer and the path; configure DPD actions to restart the tunnel.",
        "RFC 7296 §2.4, RFC 3706",
    ),
    CatalogueEntry(
        "esp-replay",
        E,
        "ESP replay",
        "The same sequence number appeared again later on the same SA: a receiver with anti-replay "
        "enabled drops it.",
        "A replay attack, a misbehaving load balancer/WAN optimiser, or a sender that reused sequence numbers.",
        "Find the device that re-sends the packets; rekey the SA.",
        "RFC 4303 §3.4.3",
    ),
    CatalogueEntry(
        "capture-duplicate",
        INFO,
        "Duplicate frames in the capture",
        "Byte-identical frames were captured twice within microseconds: an artefact of the capture "
        "(mirror port, two interfaces), not replays.",
        "SPAN/mirror port configuration or capturing on several interfaces.",
        "Capture on one interface, or deduplicate with `editcap -d`.",
        "",
    ),
    CatalogueEntry(
        "esp-out-of-window",
        W,
        "ESP packets outside the anti-replay window",
        "Packets arrived so far out of order that a receiver's anti-replay window would drop them.",
        "Reordering on the path (multipath, QoS queues, multi-core senders).",
        "Increase the replay window (strongSwan `replay_window`, Linux `replay-window`), or fix the reordering.",
        "RFC 4303 §3.4.3",
    ),
    CatalogueEntry(
        "esp-seq-reset",
        W,
        "ESP sequence numbers restarted without rekey",
        "Sequence numbers on an SA started again from a low value without a new SA.",
        "A peer restarted its SA state (crash, failover) while keeping the SPI.",
        "Rekey or restart the tunnel; check for HA failover without state sync.",
        "RFC 4303 §3.3.3",
    ),
    CatalogueEntry(
        "esp-seq-exhaustion",
        W,
        "ESP sequence numbers nearing 2^32 without ESN",
        "The 32-bit sequence counter approaches its limit; the SA must be rekeyed before it wraps.",
        "Very high traffic volume with long SA lifetimes and no extended sequence numbers.",
        "Enable ESN (`esp_proposals = ...-esn`) or rekey by volume (`rekey_bytes`/`rekey_packets`).",
        "RFC 4303 §3.3.3",
    ),
    CatalogueEntry(
        "esp-integrity-failure",
        E,
        "ESP integrity check failed",
        "ESP packets failed their ICV check although the keys verify other packets of the same SA.",
        "Corruption on the path or tampering.",
        "Look for faulty links/NICs (checksum offload bugs) or devices modifying packets.",
        "RFC 4303 §3.4.4",
    ),
    CatalogueEntry(
        "cert-not-yet-valid",
        E,
        "Certificate not yet valid",
        "A certificate's notBefore lies after the capture time.",
        "The issuing host's or the verifier's clock is wrong (clock skew), or a fresh certificate was used too early.",
        "Fix the clocks (NTP) on the peers; re-issue the certificate with a correct validity period.",
        "RFC 5280 §4.1.2.5",
    ),
    CatalogueEntry(
        "cert-expired",
        E,
        "Certificate expired",
        "A certificate's notAfter lies before the capture time.",
        "The certificate was not renewed in time, or the verifier's clock is ahead.",
        "Renew the certificate and reload it on the peer.",
        "RFC 5280 §4.1.2.5",
    ),
    CatalogueEntry(
        "cert-id-mismatch",
        E,
        "IKE identity not in the certificate",
        "The identity sent in IDi/IDr does not appear in the certificate's subject or subjectAltName.",
        "The configured identity differs from the certificate (e.g. IP address vs FQDN).",
        "Use an identity contained in the certificate (strongSwan `id =` with the SAN value) or re-issue "
        "the certificate with the identity as subjectAltName.",
        "RFC 7296 §3.5, RFC 4945",
    ),
    CatalogueEntry(
        "cert-untrusted",
        E,
        "Certificate not issued by a CA the peer trusts",
        "The certificate chain a peer sent does not lead to any CA the verifying peer named in its "
        "CERTREQ payload (SHA-1 hashes of the CAs' public keys), so the verifier cannot build a trusted chain.",
        "The peers use different CAs, an intermediate CA certificate is missing, or the verifier was not "
        "given the issuing CA (strongSwan x509ca/, libreswan NSS database).",
        "Install the issuing CA on the verifying peer, or issue the certificate from a CA it trusts; send "
        "intermediates along (strongSwan sends what is in x509ca/ and x509/). Give ipsecdiag the CA "
        "certificates with `--ca FILE` to name the requested CAs.",
        "RFC 7296 §3.6, §3.7, RFC 4945 §3.2.7",
    ),
    CatalogueEntry(
        "cert-key-usage",
        INFO,
        "Certificate usage extensions may be rejected",
        "A certificate's keyUsage or extendedKeyUsage does not include what some IKE implementations "
        "require: digitalSignature for AUTH signatures, and serverAuth or ikeIntermediate for a gateway "
        "certificate checked by Windows or macOS/iOS clients.",
        "Certificates made for TLS clients or by tools with other defaults (e.g. `pki --flag clientAuth`).",
        "Re-issue the certificate with keyUsage digitalSignature and, for gateways, extendedKeyUsage "
        "serverAuth (strongSwan `pki --issue --flag serverAuth --flag ikeIntermediate`).",
        "RFC 4945 §5.1.3.2, §5.1.3.12",
    ),
    CatalogueEntry(
        "ike-fragment-loss",
        E,
        "IP-fragmented IKE message lost (fragmentation black hole)",
        "An IKE message large enough to need IP fragmentation was never answered, while smaller "
        "messages were: a device on the path drops IP fragments.",
        "Large IKE_AUTH messages (certificates) without IKEv2 fragmentation, and a firewall, NAT or "
        "ISP that drops IP fragments.",
        "Enable IKEv2 fragmentation on both peers (strongSwan `fragmentation = yes`, libreswan "
        "`fragmentation=yes`), use smaller (ECDSA) certificates, or fix the fragment-dropping device.",
        "RFC 7383",
    ),
    CatalogueEntry(
        "ike-fragmentation-unused",
        W,
        "IKE messages IP-fragmented without IKEv2 fragmentation",
        "IKE messages were fragmented at the IP layer while IKEv2 fragmentation (RFC 7383) was not negotiated.",
        "One peer does not support or has disabled IKEv2 fragmentation.",
        "Enable IKEv2 fragmentation on both peers.",
        "RFC 7383",
    ),
    CatalogueEntry(
        "icmp-too-big",
        W,
        "ICMP fragmentation needed / packet too big for IPsec traffic",
        "A router reported that IPsec packets exceed the path MTU.",
        "The tunnel overhead pushes packets above the path MTU.",
        "Lower the tunnel MTU or clamp the TCP MSS to the value shown.",
        "RFC 1191, RFC 8201",
    ),
    CatalogueEntry(
        "tunnel-mtu",
        INFO,
        "Tunnel overhead and recommended MTU",
        "Per-SA encapsulation overhead and the largest inner packet that fits the path.",
        "",
        "Set the inner MTU / MSS clamp as recommended.",
        "RFC 4303",
    ),
    CatalogueEntry(
        "rekey-collision",
        W,
        "Simultaneous rekeys",
        "Both peers started rekeying the same SA at the same time.",
        "Identical rekey timers without jitter on both sides.",
        "Let one side rekey (strongSwan `rekey_time` with `rand_time`), or increase jitter.",
        "RFC 7296 §2.8.1",
    ),
    CatalogueEntry(
        "delete-storm",
        W,
        "SAs deleted and set up again and again",
        "Many SAs were deleted, or many IKE SAs negotiated, between the same peers within a short time: "
        "the tunnel churns instead of staying up.",
        "Duplicate or overlapping connection definitions for the same peers (each side deleting what "
        "the other just created), a peer rejecting what the other installs, DPD flapping on a lossy "
        "path, or an initiator retrying in a loop after a failure.",
        "Check both peers' logs around the frames shown for the reason each SA is deleted; keep one "
        "connection per peer pair (strongSwan `unique = replace`, libreswan `uniqueids=yes`) and fix "
        "the failure that triggers the retries.",
        "RFC 7296 §1.4.1",
    ),
    CatalogueEntry(
        "weak-crypto",
        W,
        "Weak cryptography negotiated",
        "The negotiated algorithms include ones considered weak today.",
        "Legacy defaults kept for compatibility.",
        "Use AES-GCM or AES-CBC with SHA-2, and ECP-256/384, Curve25519 or MODP-3072+.",
        "RFC 8247, RFC 8221",
    ),
    CatalogueEntry(
        "ikev1-aggressive-psk",
        W,
        "IKEv1 Aggressive Mode with pre-shared key",
        "Aggressive Mode sends the PSK-derived hash in the clear; it can be cracked offline.",
        "Legacy remote-access configurations.",
        "Use IKEv2, or Main Mode with certificates.",
        "RFC 2409 §5.4",
    ),
    CatalogueEntry(
        "no-pfs",
        INFO,
        "CHILD SA rekeyed without PFS",
        "A CHILD SA was rekeyed without a key exchange, so its keys derive from the IKE SA's.",
        "No DH group in the ESP proposals.",
        "Add a key exchange method to `esp_proposals` (e.g. `aes256gcm16-ecp256`).",
        "RFC 7296 §1.3.2",
    ),
    CatalogueEntry(
        "missing-keys",
        INFO,
        "Encrypted data without keys",
        "Encrypted IKE payloads or ESP packets are present but no keys were supplied for them, so "
        "their contents (identities, traffic selectors, inner notifies, inner packets) are hidden.",
        "No key source given, or keys for other SAs.",
        'Supply keys with `--keys`: a strongSwan charon log at level 4 (`charondebug="ike 4, chd 4"` '
        "or filelog `ike = 4` and `chd = 4`), a libreswan pluto log with "
        '`plutodebug="crypt private"` (IKEv2 IKE SAs and CHILD SAs; pluto logs no IKEv1 IKE SA keys), '
        "`ip -s xfrm state` output for ESP, or Wireshark's ikev2_decryption_table / "
        "ikev1_decryption_table / esp_sa files.",
        "",
    ),
    CatalogueEntry(
        "keys-wrong",
        E,
        "The keys for this SA verify nothing",
        "Keys were found for the SA by its SPIs, but every ESP packet or every encrypted IKE message "
        "of it failed its integrity check with them: the key bytes are not this SA's.",
        "Keys logged for an earlier SA that reused the SPIs, keys of the other direction, a key "
        "file edited by hand or cut short, the wrong integrity algorithm or key length (e.g. "
        "HMAC-SHA-256 truncated to 96 instead of 128 bits), or keys from another run of the test.",
        "Take the keys from the same run that produced the capture (the charon log or `ip xfrm state` "
        "of that time), check the algorithm names and key lengths against the SA's proposal, and "
        "check that inbound and outbound keys are not swapped.",
        "RFC 4303 §3.4.4, RFC 7296 §3.14",
    ),
    CatalogueEntry(
        "keys-unmatched",
        W,
        "Loaded keys match no SA in the capture",
        "Key records were loaded, but none of them names an SA (SPIs, cookies) that the capture "
        "holds, so nothing was decrypted with them.",
        "Keys from another session or another host, a capture taken before or after the SAs the "
        "keys belong to (rekeyed since), or the key file of the other tunnel.",
        "Record the capture and the keys in the same session; compare the SPIs the finding lists "
        "on each side (`ip xfrm state` shows the current ESP SPIs, `swanctl --list-sas` the IKE SPIs).",
        "",
    ),
    CatalogueEntry(
        "algorithm-unsupported",
        W,
        "Encrypted with an algorithm ipsecdiag cannot decrypt",
        "Keys were found for the SA, but its cipher or integrity algorithm is not implemented here "
        "(the cryptography library lacks it, or it is a private-use number with no known meaning), "
        "so its packets are counted but not decrypted.",
        "Legacy or vendor algorithms such as Twofish-CBC, Serpent, Camellia in some modes, or a "
        "private-use transform number.",
        "Decrypt these SAs with a tool that implements the algorithm (Wireshark handles some), or "
        "configure a standard algorithm such as AES-GCM for the tunnel.",
        "RFC 8221, RFC 8247",
    ),
    CatalogueEntry(
        "key-source-unused",
        W,
        "Key material given but not usable",
        "A key source was recognised but holds no usable keys, cut some keys short, or logged the "
        "keys of rekeyed IKE SAs whose SPIs the capture never showed; those SAs stay encrypted.",
        "A log level too low (strongSwan needs `ike 4`, libreswan `plutodebug=\"all crypt private\"`), "
        "a log that ends before the SA was keyed, or a rekey exchange missing from the capture.",
        "Raise the log level, log from before the SA is set up until after it is used, and capture "
        "the rekey exchanges (or enable strongSwan's `mgr 2` so rekeyed IKE SAs are logged with SPIs).",
        "",
    ),
    CatalogueEntry(
        "malformed-packet",
        W,
        "Malformed packet",
        "A packet violates its RFC at the offset and field shown; it was counted and skipped.",
        "A buggy implementation, corruption, or a capture of non-IPsec traffic on IPsec ports.",
        "Check the sending implementation; if unexpected, report it to its vendor with the frame.",
        "",
    ),
    CatalogueEntry(
        "capture-truncated",
        W,
        "Capture truncated",
        "Packets were cut by the capture's snap length or the file ends in the middle of a record; "
        "some fields could not be analysed.",
        "tcpdump/dumpcap run with a small `-s` snaplen, or the capture was interrupted.",
        "Capture with `-s 0` (full packets) and stop the capture cleanly.",
        "",
    ),
    CatalogueEntry(
        "ike-half-open-flood",
        W,
        "IKE_SA_INIT flood: many half-open IKE SAs",
        "A responder received more IKE_SA_INIT requests that were never answered than a working "
        "setup produces: most likely a scan or a denial-of-service flood (or a client looping with "
        "fresh SPIs). The evidence gives the count, the rate and the initiators sending most.",
        "An IKE scanner (ike-scan and the like), a flood against the responder's UDP 500/4500, or a "
        "misconfigured client retrying endlessly; the responder may also be down or filtered.",
        "If the initiators are not yours, rate-limit or filter them and let the responder demand "
        "cookies under load (RFC 7296 §2.6; strongSwan `charon.cookie_threshold`, libreswan "
        "`ddos-mode=busy`); if one is yours, fix that client's configuration.",
        "RFC 7296 §2.6, RFC 8019",
    ),
    CatalogueEntry(
        "capture-health",
        W,
        "Capture data that could not be used as recorded",
        "Some of the capture's data is implausible or was summarised rather than analysed one by one "
        "(record times outside any date, state beyond the analysis limits); the evidence says what "
        "and how much.",
        "A capture tool with a broken clock or time resolution, a damaged file, or a capture of a "
        "flood (scan, denial of service) larger than the per-capture limits.",
        "Check the capturing host's clock and the capture tool; for floods, filter the capture to the "
        "peers of interest (`tcpdump -r in.pcap -w out.pcap host A and host B`).",
        "",
    ),
]

CATALOGUE: dict[str, CatalogueEntry] = {e.id: e for e in _ENTRIES}


@dataclass(frozen=True)
class NotifyInfo:
    name: str
    meaning: str
    fix: str
    finding: str  # the finding id an error notify of this type maps to


# Error notifies that have a dedicated finding, and plain-language help for the others.
NOTIFY_HELP: dict[str, NotifyInfo] = {
    n.name: n
    for n in [
        NotifyInfo(
            "NO_PROPOSAL_CHOSEN",
            "None of the proposed algorithm sets is acceptable.",
            "Align the proposals of both peers.",
            "ike-no-proposal-chosen",
        ),
        NotifyInfo(
            "INVALID_KE_PAYLOAD",
            "The KE payload uses a group the responder does not want; "
            "the notify data names the wanted group.",
            "Offer the wanted group first.",
            "ke-group-mismatch",
        ),
        NotifyInfo(
            "AUTHENTICATION_FAILED",
            "The peer could not authenticate us (or we it).",
            "Check PSKs, identities and certificates.",
            "auth-failed",
        ),
        NotifyInfo(
            "TS_UNACCEPTABLE",
            "The traffic selectors do not match the peer's policy.",
            "Mirror local/remote subnets on both sides.",
            "ts-unacceptable",
        ),
        NotifyInfo(
            "INVALID_SYNTAX",
            "The peer found a malformed or unexpected payload.",
            "Check for implementation bugs or unsupported features; compare software versions.",
            "error-notify",
        ),
        NotifyInfo(
            "UNSUPPORTED_CRITICAL_PAYLOAD",
            "A payload marked critical is not supported by the peer.",
            "Disable the feature that adds the payload.",
            "error-notify",
        ),
        NotifyInfo(
            "INVALID_IKE_SPI",
            "The peer has no IKE SA with these SPIs (e.g. it restarted).",
            "Restart the tunnel; enable DPD.",
            "error-notify",
        ),
        NotifyInfo(
            "INVALID_MAJOR_VERSION",
            "The peer does not speak this IKE version.",
            "Configure the same IKE version on both sides (`version = 1|2`, `keyexchange=`).",
            "error-notify",
        ),
        NotifyInfo(
            "INVALID_MESSAGE_ID",
            "A message id outside the window was received.",
            "Usually transient; restart the IKE SA if it persists.",
            "error-notify",
        ),
        NotifyInfo(
            "INVALID_SPI",
            "ESP/AH arrived for an SPI the peer does not know.",
            "Restart the tunnel on the sending side; enable DPD.",
            "esp-unknown-spi",
        ),
        NotifyInfo(
            "SINGLE_PAIR_REQUIRED",
            "The responder only accepts a single address pair as selectors.",
            "Propose host-to-host selectors.",
            "ts-unacceptable",
        ),
        NotifyInfo(
            "NO_ADDITIONAL_SAS",
            "The responder refuses more CHILD SAs on this IKE SA.",
            "Reduce the number of CHILD SAs or raise the peer's limit.",
            "error-notify",
        ),
        NotifyInfo(
            "INTERNAL_ADDRESS_FAILURE",
            "The responder could not assign a virtual IP address.",
            "Check the address pool configuration (pools, DHCP, RADIUS).",
            "error-notify",
        ),
        NotifyInfo(
            "FAILED_CP_REQUIRED",
            "The responder requires a configuration payload (virtual IP request).",
            "Request a virtual IP (`vips = 0.0.0.0`).",
            "error-notify",
        ),
        NotifyInfo(
            "INVALID_SELECTORS",
            "ESP packet did not match the SA's selectors.",
            "Check traffic selectors and routing.",
            "error-notify",
        ),
        NotifyInfo(
            "UNACCEPTABLE_ADDRESSES",
            "MOBIKE address update refused.",
            "Check MOBIKE configuration.",
            "error-notify",
        ),
        NotifyInfo(
            "UNEXPECTED_NAT_DETECTED",
            "NAT detected although the peer forbids it.",
            "Remove the NAT or allow NAT traversal.",
            "error-notify",
        ),
        NotifyInfo(
            "TEMPORARY_FAILURE",
            "The peer is busy (e.g. a rekey in progress); retry later.",
            "Usually transient.",
            "error-notify",
        ),
        NotifyInfo(
            "CHILD_SA_NOT_FOUND",
            "The CHILD SA to rekey does not exist on the peer.",
            "Re-create the CHILD SA.",
            "error-notify",
        ),
        NotifyInfo(
            "AUTHORIZATION_FAILED",
            "Authenticated but not authorised (group membership, policy).",
            "Check authorisation rules on the peer.",
            "error-notify",
        ),
    ]
}


def explain_text(key: str) -> tuple[str, list[tuple[str, str]]] | None:
    """Title and (label, text) rows for a finding id or a notify name, for ``ipsecdiag explain``."""
    k = key.strip()
    entry = CATALOGUE.get(k.lower())
    if entry is not None:
        rows = [
            ("Severity", entry.severity.label),
            ("Meaning", entry.meaning),
            ("Common causes", entry.causes),
            ("Fix", entry.remediation),
        ]
        if entry.references:
            rows.append(("References", entry.references))
        return f"{entry.id}: {entry.title}", rows
    info = NOTIFY_HELP.get(k.upper())
    if info is not None:
        return f"Notify {info.name}", [
            ("Meaning", info.meaning),
            ("Fix", info.fix),
            ("Finding", info.finding),
        ]
    return None

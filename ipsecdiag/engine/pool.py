"""A responder's virtual IP pool (configuration payload, RFC 7296 §2.19).

Addresses are handed out in order to an owner (the IKE SA's SPIs) and come back when the IKE SA
ends. One pool object may be shared by all IKE SAs of a responder.
"""

from __future__ import annotations

import ipaddress


class AddressPool:
    def __init__(self, network: str) -> None:
        self.network = ipaddress.ip_network(network, strict=False)
        self._leases: dict[str, bytes] = {}

    def allocate(self, owner: bytes, wanted: str | None = None) -> str | None:
        """An address for ``owner`` (the same one again if it has one); None when exhausted."""
        for addr, who in self._leases.items():
            if who == owner:
                return addr
        hosts = self.network.hosts() if self.network.num_addresses > 2 else iter(self.network)
        if wanted is not None and wanted not in self._leases:
            try:
                if ipaddress.ip_address(wanted) in self.network:
                    self._leases[wanted] = owner
                    return wanted
            except ValueError:
                pass
        for ip in hosts:
            text = str(ip)
            if text not in self._leases:
                self._leases[text] = owner
                return text
        return None

    def release_owner(self, owner: bytes) -> None:
        for addr in [a for a, who in self._leases.items() if who == owner]:
            del self._leases[addr]

    def leases(self) -> dict[str, bytes]:
        return dict(self._leases)

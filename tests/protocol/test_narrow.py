"""Traffic selector narrowing (RFC 7296 §2.9)."""

from __future__ import annotations

from ipsecdiag.engine.config import selector_for as sel
from ipsecdiag.protocol.narrow import is_subset, narrow


def _texts(ts) -> list[str]:
    return [t.display() for t in ts]


def test_narrow_to_policy_and_keep_order() -> None:
    assert _texts(narrow([sel("0.0.0.0/0")], [sel("10.0.0.0/24"), sel("10.1.0.0/16")])) == ["10.0.0.0/24", "10.1.0.0/16"]
    assert _texts(narrow([sel("10.0.0.5/32")], [sel("10.0.0.0/24")])) == ["10.0.0.5/32"]
    assert narrow([sel("192.168.0.0/16")], [sel("10.0.0.0/8")]) == ()


def test_protocol_and_ports_intersect() -> None:
    tcp443 = sel("10.0.0.0/24", protocol=6, ports=(443, 443))
    assert _texts(narrow([sel("10.0.0.0/8")], [tcp443])) == ["10.0.0.0/24[tcp/443]"]
    assert narrow([sel("10.0.0.0/8", protocol=17)], [tcp443]) == ()


def test_families_do_not_mix() -> None:
    assert narrow([sel("::/0")], [sel("0.0.0.0/0")]) == ()
    assert _texts(narrow([sel("::/0")], [sel("2001:db8::/32")])) == ["2001:db8::/32"]


def test_subset_check() -> None:
    assert is_subset([sel("10.0.0.0/24")], [sel("10.0.0.0/8")])
    assert not is_subset([sel("10.0.0.0/8")], [sel("10.0.0.0/24")])
    assert not is_subset([sel("10.0.0.0/24", protocol=6)], [sel("10.0.0.0/24", protocol=17)])

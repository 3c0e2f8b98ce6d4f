"""The CHILD SA table links ESP flows to the IKE SA that negotiated them."""

from __future__ import annotations

import pytest
from report_samples import IDS, sample_report

from ipsecdiag.report.childsa import child_sa_rows


def test_negotiated_child_sa_has_its_flows_each_way() -> None:
    r = sample_report("ikev2-psk-ok")
    (row,) = child_sa_rows(r)
    sa = r.ike_sas[0]
    assert (row.ike_sa, row.ike_sa_inferred) == (sa.key, False)
    assert (row.spi_in, row.spi_out) == (0xCFAF6FD7, 0xEB0F275A)
    assert row.src == sa.initiator[0] and row.dst == sa.responder[0]
    assert (row.mode, row.proposal) == ("tunnel", "AES_GCM_16_256/NO_EXT_SEQ")
    assert (row.ts_local, row.ts_remote) == (["10.1.0.0/24"], ["10.2.0.0/24"])
    by_spi = {f.spi: f for f in r.esp_flows}
    assert (row.packets_out, row.bytes_out) == (by_spi[0xEB0F275A].packets, by_spi[0xEB0F275A].bytes)
    assert (row.packets_in, row.bytes_in) == (by_spi[0xCFAF6FD7].packets, by_spi[0xCFAF6FD7].bytes)
    assert row.first_ts == min(f.first_ts for f in r.esp_flows)
    assert row.state == "deleted"  # the capture ends with the DELETE


def test_unnegotiated_flows_are_paired_and_owner_inferred() -> None:
    r = sample_report("ikev2-psk-ok", keyed=False)
    (row,) = child_sa_rows(r)
    assert row.ike_sa == r.ike_sas[0].key and row.ike_sa_inferred
    assert row.state == "seen, negotiation encrypted (no keys)"  # IKE_AUTH captured, not read
    assert (row.packets_out, row.packets_in) == (10, 10)


def test_one_way_and_no_traffic_states() -> None:
    rows = child_sa_rows(sample_report("esp-unknown-spi"))
    assert [r.state for r in rows] == ["installed", "seen one way, negotiation not in capture"]
    assert rows[1].spi_in is None and rows[1].spi_out == 0xDEAD0001
    (row,) = child_sa_rows(sample_report("esp-missing"))
    assert row.state == "installed, no traffic" and row.first_ts is None


@pytest.mark.parametrize("stem", IDS)
def test_every_flow_in_exactly_one_row(stem: str) -> None:
    r = sample_report(stem)
    seen = [id(f) for row in child_sa_rows(r) for f in row.flows]
    assert sorted(seen) == sorted(id(f) for f in r.esp_flows)

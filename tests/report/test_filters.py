"""Display filters: each keeps what matches, the rest of the report follows, nothing mutates."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from report_samples import sample_report

from ipsecdiag.reconstruction.model import Report
from ipsecdiag.report.filters import ReportFilter, filter_report, parse_ike_sa, parse_peer, parse_spi


def _merged(*stems: str) -> Report:
    """Two captures' SAs, flows and findings in one report (their frame numbers overlap, so
    only SA and SPI ties are asserted, not frame ones)."""
    a, b = (copy.deepcopy(sample_report(s)) for s in stems)
    return replace(a, ike_sas=a.ike_sas + b.ike_sas, esp_flows=a.esp_flows + b.esp_flows, findings=a.findings + b.findings)


def test_no_filter_is_the_report_itself() -> None:
    r = sample_report("ikev2-psk-ok")
    assert filter_report(r, ReportFilter()) is r


def test_spi_keeps_its_child_sa_ike_sa_and_flow() -> None:
    r = _merged("ikev2-psk-ok", "esp-replay")
    out = filter_report(r, ReportFilter(spis=frozenset({0xC0DE0001})))
    assert [f.spi for f in out.esp_flows] == [0xC0DE0001]
    assert out.ike_sas == []
    assert "esp-replay" in {f.id for f in out.findings}  # names the SPI in its data
    assert all(f.ike_sa is None for f in out.findings)  # none of the IKE SA's findings
    out = filter_report(r, ReportFilter(spis=frozenset({0xEB0F275A})))
    assert [sa.key for sa in out.ike_sas] == [r.ike_sas[0].key]
    assert [f.spi for f in out.esp_flows] == [0xEB0F275A]
    assert len(r.esp_flows) == 4  # the input is untouched


def test_peer_and_ike_sa() -> None:
    r = _merged("ikev2-psk-ok", "esp-replay")
    out = filter_report(r, ReportFilter(peers=frozenset({"198.51.100.20"})))
    assert out.ike_sas == [] and {f.spi for f in out.esp_flows} == {0xC0DE0001, 0xC0DE0002}
    key = r.ike_sas[0].key
    for sel in (key, key.split("/")[0], key.split("/")[1]):
        out = filter_report(r, ReportFilter(ike_sas=frozenset({parse_ike_sa(sel)})))
        assert [sa.key for sa in out.ike_sas] == [key]
        assert {f.spi for f in out.esp_flows} == {0xEB0F275A, 0xCFAF6FD7}
        assert all(f.ike_sa in (key, None) for f in out.findings) and out.findings


def test_time_window() -> None:
    r = sample_report("esp-seq-reset")
    first = min(f.first_ts for f in r.esp_flows)
    assert filter_report(r, ReportFilter(time_to=first - 1)).esp_flows == []
    assert len(filter_report(r, ReportFilter(time_from=first, time_to=first)).esp_flows) >= 1
    last = max(f.last_ts for f in r.esp_flows)
    assert filter_report(r, ReportFilter(time_from=last + 1)).esp_flows == []


@pytest.mark.parametrize(
    ("fn", "text", "value"),
    [
        (parse_spi, "0xC0DE0001", 0xC0DE0001),
        (parse_spi, "3235774465", 0xC0DE0001),
        (parse_spi, "c0de0001", 0xC0DE0001),
        (parse_peer, "2001:db8:0::1", "2001:db8::1"),
        (parse_ike_sa, "0x6E72F2651AF7F94F", "6e72f2651af7f94f"),
    ],
)
def test_parsers(fn, text: str, value: object) -> None:  # type: ignore[no-untyped-def]
    assert fn(text) == value


@pytest.mark.parametrize(("fn", "text"), [(parse_spi, "0x1ffffffff"), (parse_spi, "zz"), (parse_peer, "10.0.0"), (parse_ike_sa, "1234")])
def test_parsers_refuse(fn, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=repr(text)):
        fn(text)

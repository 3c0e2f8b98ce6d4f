"""``probe connect --ping`` against the project's own ``responder --answer-pings`` on loopback:
the responder answers echo requests for addresses inside its selectors through the CHILD SA,
and refuses (silently, counted) those outside them."""

from __future__ import annotations

import threading
import time

import pytest
from echo_peer import configs

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.probe.connect import ConnectOptions, connect
from ipsecdiag.probe.ping import PingOptions, run_ping
from ipsecdiag.probe.responder import Responder, ResponderOptions


@pytest.mark.parametrize(("host", "answered"), [("10.2.0.77", True), ("10.9.0.1", False)])
def test_ping_the_projects_responder(host: str, answered: bool) -> None:
    _ci, cr = configs()
    ropts = ResponderOptions(listen="127.0.0.1", config=cr, port=0, natt_port=0, timeout=15, once=True, linger=10, answer_pings=True)
    responder = Responder(ropts, rng=DeterministicRandom("resp"), emit=lambda s: None)
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(responder.run()), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while (responder.local_natt is None or responder.driver is None) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert responder.local is not None and responder.local_natt is not None
    ci, _cr = configs(natt_port=responder.local_natt.port)
    copts = ConnectOptions(
        gateway="127.0.0.1", config=ci, offered_ike="aes256gcm16-prfsha256-ecp256", offered_esp="aes256gcm16",
        remote_port=responder.local.port, local_addr="127.0.0.1", local_port=0, timeout=8.0, rate=100.0,
    )  # fmt: skip
    got = []
    popts = PingOptions(host, count=3, interval=0.1, wait=0.5)
    result = connect(copts, rng=DeterministicRandom("c"), data_plane=lambda sa, d, n: got.append(run_ping(sa, d, n, popts, DeterministicRandom("p"))))
    t.join(timeout=15)
    assert not t.is_alive() and out, "the responder did not end within its bound"
    echo = responder.echo
    assert echo is not None and got
    if answered:
        assert got[0].received == 3 and echo.answered == 3 and result.ok, (echo.ignored, got[0], [s.text for s in result.steps])
    else:
        # 10.9.0.1 is outside the responder's selectors (10.2.0.0/24): no answer, one-way ESP
        assert got[0].received == 0 and echo.answered == 0 and echo.ignored["outside our selectors"] == 3
        assert [f.id for f in result.findings] == ["esp-one-way"]
    assert result.deleted and not echo.children  # the Delete removed the CHILD SA's tunnel too

"""Without keys, an IKE SA that appears without IKE_SA_INIT right after a CREATE_CHILD_SA on
an older SA between the same hosts (which then goes quiet) is taken as its rekey, and marked
inferred; anything else is left unlinked."""

from __future__ import annotations

from ipsecdiag.reconstruction.ike_sas import _infer_rekeys
from ipsecdiag.reconstruction.model import ExchangeRecord, IkeSaRecord, MessageRecord, Transmission
from ipsecdiag.wire.registry import ExchangeType


def _ex(t: ExchangeType, mid: int, ts: float, answered: bool = True) -> ExchangeRecord:
    def msg(at: float, resp: bool) -> MessageRecord:
        m = MessageRecord(
            src="192.0.2.1", dst="192.0.2.2", sport=4500, dport=4500, size=100, is_response=resp
        )
        m.transmissions.append(Transmission((int(at * 10),), at, 128, 1))
        return m

    return ExchangeRecord(
        type=t.name,
        exchange_type=int(t),
        message_id=mid,
        request=msg(ts, False),
        response=msg(ts + 0.01, True) if answered else None,
    )


def _sa(
    spi: int, exchanges: list[ExchangeRecord], peers: tuple[str, str] = ("192.0.2.1", "192.0.2.2")
) -> IkeSaRecord:
    sa = IkeSaRecord(
        version=2,
        spi_i=spi.to_bytes(8, "big"),
        spi_r=(spi + 1).to_bytes(8, "big"),
        initiator=(peers[0], 500),
        responder=(peers[1], 500),
    )
    sa.exchanges = exchanges
    return sa


def test_new_sa_after_create_child_sa_and_delete_is_a_probable_rekey() -> None:
    old = _sa(
        1,
        [
            _ex(ExchangeType.IKE_SA_INIT, 0, 0.0),
            _ex(ExchangeType.IKE_AUTH, 1, 0.1),
            _ex(ExchangeType.CREATE_CHILD_SA, 2, 100.0),
            _ex(ExchangeType.INFORMATIONAL, 3, 100.5),
        ],
    )
    new = _sa(10, [_ex(ExchangeType.INFORMATIONAL, 0, 160.0)])
    _infer_rekeys([old, new])
    assert new.rekeyed_from == old.key and new.rekey_inferred
    assert old.rekeyed_to == [new.key]


def test_no_link_when_the_old_sa_goes_on_or_peers_differ() -> None:
    busy = _sa(
        1,
        [
            _ex(ExchangeType.IKE_SA_INIT, 0, 0.0),
            _ex(ExchangeType.CREATE_CHILD_SA, 2, 100.0),
            _ex(ExchangeType.INFORMATIONAL, 3, 400.0),
        ],
    )  # kept working long after: a CHILD rekey
    other = _sa(
        5,
        [_ex(ExchangeType.IKE_SA_INIT, 0, 0.0), _ex(ExchangeType.CREATE_CHILD_SA, 2, 100.0)],
        peers=("198.51.100.1", "198.51.100.2"),
    )
    new = _sa(10, [_ex(ExchangeType.INFORMATIONAL, 0, 160.0)])
    fresh = _sa(20, [_ex(ExchangeType.IKE_SA_INIT, 0, 170.0)])
    _infer_rekeys([busy, other, new, fresh])
    assert new.rekeyed_from is None and fresh.rekeyed_from is None

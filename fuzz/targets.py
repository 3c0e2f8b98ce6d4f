"""Codec targets: one function per parser, each allowed exactly one kind of exception.

A target returns normally for any input its parser handles (accepted or rejected with the
parser's own error type) and raises anything else, which the driver records as an escape:

* ``ikev2``/``ikev1``: a UDP payload as an IKE message. Parsed messages must re-encode to bytes
  that parse to the same message (the codecs are round-trip exact; a difference is a bug).
* ``sk_inner``: a decrypted SK/IKEv1 payload chain (first byte: the first payload type), the
  part an attacker with the keys, or a broken peer, controls after decryption.
* ``capture``: a pcap/pcapng/gzip file through the reader and the packet decoder.
* ``keyfile``: key material through format detection and then through every reader directly.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ipsecdiag.capture.decode import Decoder
from ipsecdiag.capture.model import CaptureError
from ipsecdiag.capture.reader import open_capture_stream
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.load import READERS, parse_text
from ipsecdiag.wire.errors import WireError
from ipsecdiag.wire.ikev1 import parse_v1_message, parse_v1_payloads, serialize_v1_message
from ipsecdiag.wire.ikev2 import parse_message, parse_payloads, serialize_message


def _round_trip(data: bytes, parse: Callable[[bytes], Any], serialize: Callable[[Any], bytes], what: str) -> None:
    try:
        m = parse(data)
    except WireError:
        return
    again = parse(serialize(m))
    # Slack inside the header's length is not re-encoded (IKEv2), so the length may shrink.
    if again.payloads != m.payloads or again.header != replace(m.header, length=again.header.length):
        raise AssertionError(f"{what} message does not survive re-encoding")


def ikev2(data: bytes) -> None:
    _round_trip(data, parse_message, serialize_message, "IKEv2")


def ikev1(data: bytes) -> None:
    _round_trip(data, parse_v1_message, serialize_v1_message, "IKEv1")


def sk_inner(data: bytes) -> None:
    if not data:
        return
    for parse in (parse_payloads, parse_v1_payloads):
        try:
            parse(data[0], data[1:])
        except WireError:
            pass


class _NullSink:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None


def capture(data: bytes) -> None:
    dec = Decoder(_NullSink())  # type: ignore[arg-type]
    try:
        with open_capture_stream(io.BytesIO(data), "fuzz") as cap:
            for fr in cap.frames():
                dec.feed(*fr)
    except CaptureError:
        return
    dec.finish()


_READER_NAMES = sorted(READERS)


def keyfile(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        parse_text(text, name="fuzz")
    except KeyFileError:
        pass
    # Detection picks one reader; every reader must also survive text meant for another.
    reader = READERS[_READER_NAMES[len(data) % len(_READER_NAMES)]]
    try:
        reader(text, name="fuzz")
    except KeyFileError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ikev2": ikev2,
    "ikev1": ikev1,
    "sk_inner": sk_inner,
    "capture": capture,
    "keyfile": keyfile,
}

"""The host link's framed protocol (pure Python: byte layouts, CRC, frame codec).

Every frame, both directions::

    0xA5 | SEQ | CMD | LEN | PAYLOAD (LEN bytes) | CRC8

``CRC8`` is the CRC-8 with polynomial 0x07 (init 0) over SEQ, CMD, LEN and the payload. Multi-byte
fields are little-endian. Host to board (one operation per frame; the board answers each):

=========  =====  =====================================  =====================================
command    CMD    payload                                answer
=========  =====  =====================================  =====================================
WRITE      0x01   addr (A bytes), data (D bytes)         ACK, after the chip is idle again
READ       0x02   addr (RA bytes)                        READ_DATA: data (RD bytes)
EVENT      0x03   event word (EV bytes: index, end bit)  ACK, once the chip accepted the event
PING       0x04   —                                      PONG: version, config hash (4 bytes)
=========  =====  =====================================  =====================================

Board to host: ACK 0x80, READ_DATA 0x82, PONG 0x84 (SEQ echoes the command's), OUT_EVENT 0x83 (one per
output event of the chip, SEQ counting output events modulo 256, payload an event word) and NAK 0xFE
(payload: error code — 1 bad CRC, 2 bad command or length, 3 frame timed out; SEQ is the frame's if
known). A WRITE or EVENT whose SEQ equals the last executed one is a retry: it is answered again but
not executed twice. After a NAK or a partial frame (no byte for ``FRAME_TIMEOUT_BYTES`` byte times)
the board hunts for the next 0xA5: that is the resynchronisation.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from hw.bus import BusMap
from hw.config import ChipConfig

SYNC = 0xA5
WRITE, READ, EVENT, PING = 0x01, 0x02, 0x03, 0x04
ACK, READ_DATA, OUT_EVENT, PONG, NAK = 0x80, 0x82, 0x83, 0x84, 0xFE
NAK_CRC, NAK_COMMAND, NAK_TIMEOUT = 1, 2, 3
VERSION = 1
FRAME_TIMEOUT_BYTES = 4


def crc8(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def nbytes(bits: int) -> int:
    return (bits + 7) // 8


@dataclass(frozen=True)
class Layout:
    """Payload field sizes for one chip configuration (from :class:`hw.bus.BusMap`)."""
    cfg: ChipConfig

    @property
    def bus(self) -> BusMap:
        return BusMap(self.cfg)

    @property
    def addr_bytes(self) -> int:
        return nbytes(self.bus.addr_bits)

    @property
    def data_bytes(self) -> int:
        return nbytes(self.bus.write_data_bits)

    @property
    def read_addr_bytes(self) -> int:
        return nbytes(self.bus.read_addr_bits)

    @property
    def read_data_bytes(self) -> int:
        return nbytes(self.bus.read_data_bits)

    @property
    def event_bytes(self) -> int:
        return nbytes(self.cfg.index_bits + 1)

    @property
    def max_payload(self) -> int:
        return max(self.addr_bytes + self.data_bytes, self.read_addr_bytes, self.event_bytes, 1)

    @property
    def config_hash(self) -> int:
        """CRC-32 of the structure: the host checks that the board carries the chip it expects."""
        return zlib.crc32(repr(sorted(self.cfg.structure().to_dict().items())).encode())

    def expected_length(self, cmd: int) -> int | None:
        return {WRITE: self.addr_bytes + self.data_bytes, READ: self.read_addr_bytes,
                EVENT: self.event_bytes, PING: 0}.get(cmd)


def encode(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    body = bytes([seq & 0xFF, cmd, len(payload)]) + payload
    return bytes([SYNC]) + body + bytes([crc8(body)])


def le(value: int, n: int) -> bytes:
    return int(value).to_bytes(n, "little")

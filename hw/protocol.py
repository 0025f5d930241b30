"""The host link's framed protocol (pure Python: frame format, CRC, frame encoder).

Every frame, both directions::

    0xA5 | SEQ | CMD | LEN | PAYLOAD (LEN bytes) | CRC

``CRC`` is :data:`CRC8`, the catalogued CRC-8/SMBUS (polynomial 0x07, initial value 0, not reflected),
over SEQ, CMD, LEN and the payload. The gateware (:mod:`hw.bridge`) builds its CRC processor from the
same object, so the CRC is defined once. Multi-byte fields are little-endian. Host to board (one
operation per frame; the board answers each):

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

import hashlib
from dataclasses import dataclass

from amaranth.lib.crc import catalog

from hw.bus import BusMap
from hw.config import ChipConfig

SYNC = 0xA5
WRITE, READ, EVENT, PING = 0x01, 0x02, 0x03, 0x04
COMMANDS = (WRITE, READ, EVENT, PING)
ACK, READ_DATA, OUT_EVENT, PONG, NAK = 0x80, 0x82, 0x83, 0x84, 0xFE
NAK_CRC, NAK_COMMAND, NAK_TIMEOUT = 1, 2, 3
VERSION = 1
FRAME_TIMEOUT_BYTES = 4
PONG_BYTES = 5                          # version, config hash

#: The frame check: CRC-8/SMBUS over bytes. ``CRC8.compute(body)`` on the host, ``CRC8.create()`` (an
#: :class:`amaranth.lib.crc.Processor`) in the gateware.
CRC8 = catalog.CRC8_SMBUS(data_width=8)


def nbytes(bits: int) -> int:
    return (bits + 7) // 8


def config_hash(cfg: ChipConfig) -> int:
    """32 bits of the structure's SHA-256: the host checks that the board carries the chip it expects.

    Uses ``cfg.structure_hash`` (a SHA-256 hex digest) where :class:`ChipConfig` provides it, else
    hashes the structure here."""
    digest = getattr(cfg, "structure_hash", None)
    if callable(digest):
        digest = digest()
    if digest is None:
        structure = repr(sorted(cfg.structure().to_dict().items())).encode()
        digest = hashlib.sha256(structure).hexdigest()
    return int(digest[:8], 16)


@dataclass(frozen=True)
class FrameFormat:
    """Payload field sizes of the frames for one chip configuration (from :class:`hw.bus.BusMap`)."""
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
        """Longest payload of a command (host to board)."""
        return max(self.addr_bytes + self.data_bytes, self.read_addr_bytes, self.event_bytes, 1)

    @property
    def max_reply(self) -> int:
        """Longest payload of an answer or output event (board to host)."""
        return max(self.read_data_bytes, self.event_bytes, PONG_BYTES)

    @property
    def config_hash(self) -> int:
        return config_hash(self.cfg)

    def expected_length(self, cmd: int) -> int | None:
        return {WRITE: self.addr_bytes + self.data_bytes, READ: self.read_addr_bytes,
                EVENT: self.event_bytes, PING: 0}.get(cmd)


def encode(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    body = bytes([seq & 0xFF, cmd, len(payload)]) + payload
    return bytes([SYNC]) + body + bytes([CRC8.compute(body)])


def le(value: int, n: int) -> bytes:
    return int(value).to_bytes(n, "little")

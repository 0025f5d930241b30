"""The board top (UART + protocol bridge + core RTL) driven through the framed protocol, with faults.

Property under test: every run either equals the fast model exactly or raises LinkError — a corrupted
or lost frame never yields a silently wrong result. Also: the gateware's CRC and frames are the host's,
and a bad frame is NAKed with its reason."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw import protocol as P
from hw.bridge import FrameError, FrameReceiver, FrameTransmitter
from hw.config import ChipConfig, ConfigError
from sim.board_link import BoardChip, LinkError
from sim.simulated_board import SimBoardTransport
from sim.chip import make_chip
from tests.compare import assert_same

CFG = ChipConfig(layer_sizes=(6, 5, 3), lanes=2, threshold=20)
RNG = np.random.default_rng(0)
W = [RNG.integers(-40, 60, (6, 5)), RNG.integers(-40, 60, (5, 3))]
X = RNG.random((1, 3, 6)) < 0.5


class FrameFault:
    """Rewrites the ``nth`` frame with command ``cmd`` in a byte stream: 'flip' its CRC, 'drop' its tail."""

    def __init__(self, cmd, nth, action="flip"):
        self.cmd, self.nth, self.action = cmd, nth, action
        self.buf, self.seen, self.done = bytearray(), 0, False

    def __call__(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            self.buf.append(b)
            if self.buf[0] != P.SYNC:
                out += self.buf
                self.buf.clear()
                continue
            if len(self.buf) >= 4 and len(self.buf) == 5 + self.buf[3]:
                frame = bytearray(self.buf)
                self.buf.clear()
                if not self.done and frame[2] == self.cmd:
                    if self.seen == self.nth:
                        self.done = True
                        if self.action == "flip":
                            frame[-1] ^= 0x10
                        else:
                            frame = frame[:3]
                    self.seen += 1
                out += frame
        return bytes(out)


#: answer deadline on the simulated board's clock (SimBoardTransport.now): 4000 cycles, where the slowest answer
#: of these runs takes 750 (a READ of a state word; frames are ~10 bytes of 40 cycles at divisor 4) and a time
#: step's output 2400 (its deadline is 4 of these). Simulated time: a loaded machine simulates slower (1000
#: cycles/s here at load 20), and the deadline moves with it.
SIM_TIMEOUT = 4e-4


def run(to_board=None, from_board=None, timeout=SIM_TIMEOUT, retries=3):
    tr = SimBoardTransport(CFG, divisor=4, to_board=to_board, from_board=from_board)
    try:
        chip = BoardChip(CFG, tr, timeout=timeout, retries=retries)
        chip.load(W)
        return chip.run(X, record_state=True), chip.host
    finally:
        tr.close()


@pytest.fixture(scope="module")
def model():
    f = make_chip(CFG, "fast")
    f.load(W)
    return f.run(X, record_state=True)


def test_clean_link_is_exact(model):
    r, host = run()
    assert_same(model, r)
    assert host.bad_frames == 0


#: each case simulates the whole board through its UART (tens of seconds): one flip and one drop of each frame
#: kind by default, the rest with ``-m slow``
SLOW = pytest.mark.slow


@pytest.mark.parametrize("cmd, nth, action", [(P.WRITE, 3, "flip"), pytest.param(P.EVENT, 1, "flip", marks=SLOW),
                                              pytest.param(P.WRITE, 7, "drop", marks=SLOW), (P.EVENT, 2, "drop")])
def test_corrupted_or_truncated_commands_are_retried(model, cmd, nth, action):
    fault = FrameFault(cmd, nth, action)
    r, _ = run(to_board=fault)
    assert fault.done
    assert_same(model, r)


# load = 5 register + 28 weight + 5 offset writes, then 1 clear: ACK #39 (0-based) is the first event's
@pytest.mark.parametrize("cmd, nth", [(P.ACK, 39), pytest.param(P.ACK, 40, marks=SLOW), (P.READ_DATA, 4)])
def test_corrupted_answers_are_dropped_and_retried_without_double_execution(model, cmd, nth):
    fault = FrameFault(cmd, nth)     # an event's ACK lost -> resent with the same SEQ, must not run twice
    r, host = run(from_board=fault)
    assert fault.done and host.bad_frames == 1
    assert_same(model, r)


def test_lost_output_event_is_an_error_not_a_wrong_result(model):
    assert model.output.sum() > 0
    with pytest.raises(LinkError, match="output events lost|end of time step never arrived"):
        run(from_board=FrameFault(P.OUT_EVENT, 0))


def test_dead_link_times_out_clearly():
    with pytest.raises(LinkError, match=r"failed after 2 tries: no answer within 0.0002 s"):
        run(to_board=lambda data: b"", timeout=2e-4, retries=1)


def test_board_with_another_chip_is_refused():
    tr = SimBoardTransport(CFG, divisor=4)
    try:
        with pytest.raises(ConfigError, match="carries another chip"):
            BoardChip(CFG.replace(lanes=3), tr)
    finally:
        tr.close()


def test_missing_serial_port_is_a_clear_error():
    from sim.chip import make_chip as mk
    with pytest.raises(ConfigError, match=r"port='/dev/nonexistent-spikeloop' \(baud 115200\): cannot open"):
        mk(CFG, "board", port="/dev/nonexistent-spikeloop")


# -- the link's pieces in isolation -----------------------------------------------------------------------
def crc8_bitwise(data: bytes) -> int:
    """The protocol's original hand-written CRC-8 (polynomial 0x07, init 0): the wire format is unchanged."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def simulate(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def test_gateware_crc_equals_host_crc():
    rng = random.Random(8)
    strings = [b"", b"\xa5" * 5, bytes(range(256))]
    strings += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(60)]
    dut, got = P.CRC8.create(), []

    async def testbench(ctx):
        for string in strings:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.valid, 1)
            for byte in string:
                ctx.set(dut.data, byte)
                await ctx.tick()
            ctx.set(dut.valid, 0)
            got.append(ctx.get(dut.crc))

    simulate(dut, testbench)
    assert got == [P.CRC8.compute(s) for s in strings] == [crc8_bitwise(s) for s in strings]


def random_frames(n, max_payload, seed=3):
    rng = random.Random(seed)
    def payload():
        return bytes(rng.randrange(256) for _ in range(rng.randrange(max_payload + 1)))
    return [(rng.randrange(256), rng.randrange(256), payload()) for _ in range(n)]


def test_transmitter_sends_the_host_encoding():
    frames = random_frames(30, 5)
    dut, sent = FrameTransmitter(5), bytearray()

    async def testbench(ctx):
        ctx.set(dut.bytes.ready, 1)
        for seq, cmd, payload in frames:
            ctx.set(dut.frame.payload, {"seq": seq, "cmd": cmd, "length": len(payload),
                                        "payload": list(payload) + [0] * (5 - len(payload))})
            ctx.set(dut.frame.valid, 1)
            await ctx.tick().until(dut.frame.ready)
            ctx.set(dut.frame.valid, 0)
            end = len(sent) + len(P.encode(seq, cmd, payload))
            while len(sent) < end:
                _, _, valid, byte = await ctx.tick().sample(dut.bytes.valid, dut.bytes.payload)
                if valid:
                    sent.append(byte)

    simulate(dut, testbench)
    assert bytes(sent) == b"".join(P.encode(*f) for f in frames)


def test_receiver_checks_crc_and_length():
    good = random_frames(20, 4)
    stream = [(P.encode(*f), f, FrameError.NONE) for f in good]
    bad_crc = bytearray(P.encode(9, P.PING))
    bad_crc[-1] ^= 0x01
    stream.insert(5, (bytes(bad_crc), (9, P.PING, b""), FrameError.CRC))
    stream.insert(9, (bytes([0x00, 0x13]), None, None))                        # noise before a SYNC: skipped
    stream.insert(12, (bytes([P.SYNC, 4, P.READ, 5]), (4, P.READ, None), FrameError.LENGTH))
    dut, got = FrameReceiver(max_payload=4, timeout=50), []
    expected = [(f, e) for _, f, e in stream if f is not None]

    async def sender(ctx):
        for data in b"".join(d for d, _, _ in stream):
            ctx.set(dut.bytes.payload, data)
            ctx.set(dut.bytes.valid, 1)
            await ctx.tick().until(dut.bytes.ready)
        ctx.set(dut.bytes.valid, 0)

    async def receiver(ctx):
        ctx.set(dut.frame.ready, 1)
        while len(got) < len(expected):
            _, _, valid, frame = await ctx.tick().sample(dut.frame.valid, dut.frame.payload)
            if valid:
                payload = bytes(frame.payload[i] for i in range(frame.length)) if frame.error == FrameError.NONE else None
                got.append(((frame.seq, frame.cmd, payload), frame.error))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(sender)
    sim.add_testbench(receiver)
    sim.run()
    assert got == [((s, c, p if e == FrameError.NONE else None), e) for (s, c, p), e in expected]


# -- bad frames on the whole board top are NAKed, and the board resynchronises --------------------------------
def next_frame(transport, timeout=SIM_TIMEOUT):
    """The next frame from the board as (seq, cmd, payload); its CRC must be right (simulated seconds)."""
    data, deadline = bytearray(), transport.now() + timeout
    while transport.now() < deadline:
        data += transport.read(64, deadline - transport.now())
        while data and data[0] != P.SYNC:
            data.pop(0)
        if len(data) >= 5 and len(data) >= 5 + data[3]:
            frame = bytes(data[:5 + data[3]])
            assert frame == P.encode(frame[1], frame[2], frame[4:-1])
            return frame[1], frame[2], frame[4:-1]
    raise AssertionError("the board did not answer")


def corrupted(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x40])


@pytest.mark.parametrize("frame, code", [
    (corrupted(P.encode(7, P.PING)), P.NAK_CRC),
    (corrupted(P.encode(7, P.WRITE, bytes(P.FrameFormat(CFG).expected_length(P.WRITE)))), P.NAK_CRC),
    (P.encode(7, P.PING, b"\x00"), P.NAK_COMMAND),                         # wrong length for the command
    (P.encode(7, 0x55), P.NAK_COMMAND),                                    # unknown command
    (bytes([P.SYNC, 7, P.READ, 200]), P.NAK_COMMAND),                      # longer than any command
    (P.encode(7, P.PING)[:3], P.NAK_TIMEOUT),                              # stops inside the frame
], ids=["ping-crc", "write-crc", "length", "command", "overlong", "timeout"])
def test_bad_frame_is_naked_and_the_board_resynchronises(frame, code):
    transport = SimBoardTransport(CFG, divisor=4)
    try:
        transport.write(frame)
        assert next_frame(transport) == (7, P.NAK, bytes([code]))
        transport.write(b"\x13" + P.encode(8, P.PING))
        assert next_frame(transport) == (8, P.PONG, bytes([P.VERSION]) + P.le(P.config_hash(CFG), 4))
    finally:
        transport.close()


def test_config_hash_is_32_bits_of_the_structure_hash():
    from types import SimpleNamespace
    assert P.config_hash(SimpleNamespace(structure_hash="0123abcd" + "0" * 56)) == 0x0123ABCD
    assert P.config_hash(CFG) == P.config_hash(CFG.replace(threshold=99)) != P.config_hash(CFG.replace(lanes=3))

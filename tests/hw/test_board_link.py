"""The board top (UART + protocol bridge + core RTL) driven through the framed protocol, with faults.

Property under test: every run either equals the fast model exactly or raises LinkError — a corrupted
or lost frame never yields a silently wrong result."""
import numpy as np
import pytest

from hw import protocol as P
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


def run(to_board=None, from_board=None, timeout=1.0, retries=3):
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


@pytest.mark.parametrize("cmd, nth, action", [(P.WRITE, 3, "flip"), (P.EVENT, 1, "flip"), (P.WRITE, 7, "drop"),
                                              (P.EVENT, 2, "drop")])
def test_corrupted_or_truncated_commands_are_retried(model, cmd, nth, action):
    fault = FrameFault(cmd, nth, action)
    r, _ = run(to_board=fault)
    assert fault.done
    assert_same(model, r)


# load = 5 register + 28 weight + 5 offset writes, then 1 clear: ACK #39 (0-based) is the first event's
@pytest.mark.parametrize("cmd, nth", [(P.ACK, 39), (P.ACK, 40), (P.READ_DATA, 4)])
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
    with pytest.raises(LinkError, match=r"failed after 2 tries: no answer within 0.3 s"):
        run(to_board=lambda data: b"", timeout=0.3, retries=1)


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

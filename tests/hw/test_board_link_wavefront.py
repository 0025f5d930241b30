"""A wavefront chip (ChipConfig.wavefront; docs/chip.md, "Wavefront") behind the board link (the board top's RTL in
Amaranth's simulator, through its UART). A file of its own beside test_board_link.py so that the two run in
parallel."""
from sim.board_link import BoardChip
from sim.chip import make_chip
from sim.simulated_board import SimBoardTransport
from tests.compare import assert_same
from tests.hw.test_board_link import CFG, SIM_TIMEOUT, W, X


def test_wavefront_chip_over_the_link():
    """A wavefront chip (docs/chip.md, "Wavefront") behind the link: recording the membranes, the host sends a step
    and waits for its output, which the chip gives without the next step's input; otherwise it streams every step's
    events and takes the outputs as they come — either way the model's spikes (and membranes) and every counter but
    the cycles (the model's are a host's that is always ready; the link's pace sets the board's)."""
    from tests.compare import LOCKSTEP_DEPENDENT
    cfg = CFG.replace(update="touched", max_steps=8, wavefront=True)
    f = make_chip(cfg, "fast")
    f.load(W)
    tr = SimBoardTransport(cfg, divisor=4)
    try:
        chip = BoardChip(cfg, tr, timeout=SIM_TIMEOUT)
        chip.load(W)
        assert_same(f.run(X, record_state=True), chip.run(X, record_state=True), LOCKSTEP_DEPENDENT)
        # streamed: every step's events sent before the outputs are in (the link's pace sets the cycles)
        assert_same(f.run(X), chip.run(X), LOCKSTEP_DEPENDENT)
    finally:
        tr.close()

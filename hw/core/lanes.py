"""The neuron lanes: :class:`NeuronLanes`, the per-lane arithmetic of ``docs/chip.md`` ("Arithmetic") —
accumulate (EVENT) and the update pipeline's saturate, fire, leak and reset (UPDATE)."""
from __future__ import annotations

from amaranth.hdl import C, Cat, ClockSignal, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import ChipConfig
from hw.core.bias import bias_stage
from hw.core.shapes import _lanes_of


class NeuronLanes(wiring.Component):
    """The arithmetic of ``lanes`` neurons (``docs/chip.md``, "Arithmetic"), pipelined.

    ``membrane``, ``membrane_update``, ``weights`` and ``offsets`` are the memories' read data. EVENT
    (every cycle): the membrane word of the event engine and the weight word are registered (the membrane
    register takes ``accumulated`` instead when ``forward``: the word being written back this cycle is the one
    just read); ``accumulated`` is the registered ``membrane + weights`` lane by lane. UPDATE, stage by stage
    (a stage's registers load when ``advance`` and a group moves into it: ``valid[k]``, the sequencer's
    valid bit of the stage before, is high; otherwise they hold, so between UPDATE phases — when the update
    engine's bank reads at the event engine's address — the pipeline, the leak multiplier's operand included,
    stands still instead of following the event reads; the registers of an empty stage are never used):

    * stage 1→2: the update engine's membrane word (``accumulated`` instead when ``forward_update``) and
      the offsets are registered;
    * stage 2: saturate the registered membrane word to ``potential``, ``threshold + offsets``;
    * stage 3: ``fired`` = above the threshold (only the first ``active`` lanes: the last group of a layer
      may be partial), ``potential · beta`` (registered product: a DSP multiply on its own; on an ECP5 the
      product register is the ``MULT18X18D``'s own output register, :meth:`_leak_multiply`);
    * stage 4: the rounding adder for the leak and, in parallel, the one for the subtract reset;
    * stage 5 (``fired``, ``fired_count``, ``next_membrane``): clamp and select the stored word (update by
      touch: done in stage 4 and registered, :meth:`_select_ahead`).

    The sequencer registers the read addresses, so a group it fetches in cycle ``c`` is read in ``c + 1``
    and is in stage 5 in cycle ``c + UPDATE_LATENCY``.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__({
            "membrane": In(_lanes_of(signed(cfg.acc_bits), cfg)),          # the event engine's word
            "membrane_update": In(_lanes_of(signed(cfg.acc_bits), cfg)),   # the update engine's word
            "weights": In(_lanes_of(signed(cfg.weight_bits), cfg)),
            "offsets": In(_lanes_of(signed(cfg.threshold_offset_bits), cfg)),
            "threshold": In(cfg.membrane_bits - 1),
            "beta": In(cfg.beta_frac_bits + 1),        # beta_int, 1 .. 2**f (2**f: no leak, exact)
            "reset_zero": In(1),
            "active": In(range(cfg.lanes + 1)),          # for the group in stage 3
            "advance": In(1),
            "valid": In(cfg.update_latency),             # the sequencer's stage valid bits (stage k + 1: valid[k])
            "forward": In(1),
            "forward_update": In(1),
            "accumulated": Out(_lanes_of(signed(cfg.acc_bits), cfg)),
            "fired": Out(cfg.lanes),
            "fired_count": Out(range(cfg.lanes + 1)),
            "fired_next": Out(cfg.lanes),                 # `fired` of the group in stage 4
            "next_membrane": Out(_lanes_of(signed(cfg.acc_bits), cfg)),   # in the stored word's width
            **({"membrane_stored": In(_lanes_of(signed(cfg.acc_bits), cfg)),   # update by touch: the stored u
                "elapsed": In(cfg.beta_frac_bits + 1),    # B_k of the word in stage 1 -> 2, from the leak table
                "hot": Out(1)} if cfg.touched else {}),    # a lane of next_membrane is above its firing level
            **({"bias": In(_lanes_of(signed(cfg.membrane_bits), cfg))} if cfg.has_bias else {}),   # hw.core.bias
        })

    def elaborate(self, platform):
        cfg = self.cfg
        M, F = cfg.membrane_bits, cfg.beta_frac_bits
        lo, hi = cfg.membrane_min, cfg.membrane_max
        m = Module()
        fired4 = self.fired_next
        # the stage registers' updates, by the stage they load: stage[k] when the group moving in is valid[k]
        # (update by touch: two more stages, A and B, before the saturate stage)
        X = 2 if cfg.touched else 1 if cfg.has_bias else 0      # (a chip with a bias: one, the add)
        stage = {k: [] for k in range(1, 5 + X)}
        above = []
        for k in range(cfg.lanes):
            # EVENT: the event engine's membrane word and the weight word, every cycle
            sum_word = Signal(signed(cfg.acc_bits), name=f"sum_word{k}")
            weight = Signal(signed(cfg.weight_bits), name=f"weight{k}")
            m.d.sync += [sum_word.eq(Mux(self.forward, self.accumulated[k], self.membrane[k])),
                         weight.eq(self.weights[k])]
            m.d.comb += self.accumulated[k].eq(sum_word + weight)
            # UPDATE stage 1 -> 2: the update engine's membrane word and the offsets
            word = Signal(signed(cfg.acc_bits), name=f"word{k}")
            offset = Signal(signed(cfg.threshold_offset_bits), name=f"offset{k}")
            stage[1] += [word.eq(Mux(self.forward_update, self.accumulated[k], self.membrane_update[k])),
                         offset.eq(self.offsets[k])]
            if cfg.touched:
                word, offset = self._elapsed_leak(m, k, word, offset, stage, platform)
            elif cfg.has_bias:                            # stage 2: word + b (hw.core.bias)
                word, offset = bias_stage(cfg, k, word, offset, self.bias, stage, 1)
            # stage 2 -> 3: saturate; threshold
            potential = Signal(signed(M), name=f"potential{k}")
            threshold3 = Signal(signed(M + 1), name=f"threshold{k}")
            if cfg.touched:                               # word = (over, under, the word): _elapsed_leak
                over, under, word = word
                stage[2 + X].append(potential.eq(Mux(over, hi, Mux(under, lo, word))))
            else:
                stage[2 + X].append(potential.eq(Mux(word > hi, hi, Mux(word < lo, lo, word))))
            stage[2 + X].append(threshold3.eq(self.threshold + offset))
            # stage 3 -> 4: compare; leak multiply; the subtract reset's bias
            product = Signal(signed(M + F + 1), name=f"product{k}")
            bias = Signal(signed(M + F + 2), name=f"bias{k}")
            stage[3 + X].append(fired4[k].eq((potential > threshold3) & (k < self.active)))
            if self.dsp_kind(cfg, platform) == "mult18x18d":
                self._leak_multiply(m, k, potential, product, self.advance & self.valid[3 + X])
            else:
                stage[3 + X].append(product.eq(potential * self.beta))
            stage[3 + X].append(bias.eq((1 << (F - 1)) - (threshold3 << F)))
            # stage 4 -> 5: round the leak; leaked - threshold = (product + bias) >> F
            if cfg.touched:                               # next_membrane above the level, registered beside it
                above.append(self._select_ahead(m, k, product, bias, threshold3, fired4[k], stage))
            else:
                leaked = Signal(signed(M), name=f"leaked{k}")
                subtracted = Signal(signed(M + 2), name=f"subtracted{k}")
                stage[4 + X] += [leaked.eq((product + (1 << (F - 1))) >> F), subtracted.eq((product + bias) >> F)]
                # stage 5: clamp, reset, select
                clamped = Mux(subtracted < lo, lo, Mux(subtracted > hi, hi, subtracted))
                m.d.comb += self.next_membrane[k].eq(Mux(self.fired[k], Mux(self.reset_zero, 0, clamped), leaked))
            stage[4 + X].append(self.fired[k].eq(fired4[k]))
        stage[4 + X] += [self.fired_count.eq(sum(fired4[k] for k in range(cfg.lanes)))]
        if cfg.touched:
            m.d.comb += self.hot.eq(Cat(above).any())
        for k, updates in stage.items():
            with m.If(self.advance & self.valid[k]):
                m.d.sync += updates
        return m

    @staticmethod
    def dsp_kind(cfg: ChipConfig, platform) -> str:
        """How the leak multiply is built on ``platform`` (None: simulation): ``"mult18x18d"`` — an ECP5
        ``MULT18X18D`` whose output register is the stage-4 ``product`` register (the potential and beta fit its
        18-bit inputs) — or ``"generic"`` (a multiply and a register; Yosys maps it to a DSP with no register
        inside, ``share/lattice/dsp_map_18x18.v``)."""
        family = str(getattr(platform, "family", "")).lower()
        if family == "ecp5" and cfg.membrane_bits <= 18 and cfg.beta_frac_bits + 1 <= 17:
            return "mult18x18d"
        return "generic"

    def _select_ahead(self, m, k, product, bias, threshold3, fired4, stage):
        """Update by touch, lane ``k``: the stored word ``next_membrane`` computed in stage 4 and registered, so
        the last stage (the membrane memory's write data and its bypass register, the hot bit) starts from a
        register. The clamp's compares are taken from ``product`` beside the subtract, not after it:
        ``(product + bias) >> f < lo`` iff ``product + bias - (lo << f) < 0`` and ``> hi`` iff
        ``product + bias - ((hi + 1) << f) >= 0`` (``lo << f`` and ``(hi + 1) << f`` are multiples of ``2^f``),
        the two biases registered in stage 3 beside ``bias``. Same value, same cycle as the default lanes'
        stage-5 clamp, reset and select of the stage-5 ``leaked`` and ``subtracted`` (``reset_zero`` is a
        runtime register, ``fired4`` stage 4's ``fired``). Returns the lane's hot bit: the stored word above the
        group's level, registered beside it."""
        cfg, M, F, X = self.cfg, self.cfg.membrane_bits, self.cfg.beta_frac_bits, 2
        lo, hi = cfg.membrane_min, cfg.membrane_max
        bias_lo, bias_hi = (Signal(signed(M + F + 3), name=f"bias_{n}{k}") for n in ("lo", "hi"))
        stage[3 + X] += [bias_lo.eq((1 << (F - 1)) - (threshold3 << F) - (lo << F)),
                         bias_hi.eq((1 << (F - 1)) - (threshold3 << F) - ((hi + 1) << F))]
        leaked, subtracted = Signal(signed(M), name=f"leaked{k}"), Signal(signed(M + 2), name=f"subtracted{k}")
        under, over = Signal(name=f"under{k}"), Signal(name=f"over{k}")
        m.d.comb += [leaked.eq((product + (1 << (F - 1))) >> F), subtracted.eq((product + bias) >> F),
                     under.eq((product + bias_lo) < 0), over.eq((product + bias_hi) >= 0)]
        new = Signal(signed(cfg.acc_bits), name=f"next_membrane{k}")
        clamped = Mux(under, lo, Mux(over, hi, subtracted))
        stage[4 + X].append(new.eq(Mux(fired4, Mux(self.reset_zero, 0, clamped), leaked)))
        m.d.comb += self.next_membrane[k].eq(new)
        # `new > level` (the level: threshold3, the group's threshold + offset), registered with `new` from the same
        # choice: leaked > level iff product + 2^(f-1) - ((level + 1) << f) >= 0, subtracted > level iff product + bias
        # - ((level + 1) << f) >= 0 (both biases registered in stage 3), the rails and 0 against the level directly
        level4 = Signal(signed(M + 1), name=f"level4_{k}")
        bias_leak, bias_sub = (Signal(signed(M + F + 4), name=f"bias_{n}_above{k}") for n in ("leak", "sub"))
        stage[3 + X] += [level4.eq(threshold3), bias_leak.eq((1 << (F - 1)) - ((threshold3 + 1) << F)),
                         bias_sub.eq((1 << (F - 1)) - (threshold3 << F) - ((threshold3 + 1) << F))]
        leak_above, sub_above = Signal(name=f"leaked_above{k}"), Signal(name=f"subtracted_above{k}")
        m.d.comb += [leak_above.eq((product + bias_leak) >= 0), sub_above.eq((product + bias_sub) >= 0)]
        clamped_above = Mux(under, lo > level4, Mux(over, hi > level4, sub_above))
        hot = Signal(name=f"hot_lane{k}")
        stage[4 + X].append(hot.eq(Mux(fired4, Mux(self.reset_zero, 0 > level4, clamped_above), leak_above)))
        return hot

    def _leak_multiply(self, m, k, potential, product, enable):
        """Lane ``k``'s leak multiply as an ECP5 ``MULT18X18D`` with its output register on (``REG_OUTPUT_CLK``
        = ``CLK0``, clock enable ``CE0`` = ``enable``, the stage-3 load; synchronous reset ``RST0`` = the
        domain's reset, as the generic register's): ``product`` shows ``potential · beta`` as registered at the
        group's stage-3 load, the same cycle and value as the generic register. The inputs are not registered
        (``potential`` is the stage register; ``beta`` the runtime register), so nextpnr times the path from
        them through the multiplier to the DSP's register (its ``REGS_OUTPUT`` timing), and the path from the
        register to the stage-4 adders apart: the long routes to and from the few DSP rows are no longer one
        path. Both operands are signed 18-bit words: ``potential`` sign-extended, ``beta`` (at most 17 bits)
        zero-extended. ``sim/primitives/ecp5/MULT18X18D.v`` models this configuration for the RTL
        simulators."""
        registered_multiply(m, "leak", k, potential, self.beta, product, enable)

    def _elapsed_leak(self, m, k, h, offset, stage, platform):
        """Update by touch, lane ``k``: two stages between the registered word and the saturate stage. The word
        holds the stored membrane ``u`` and the step's synaptic sum ``h`` apart; stage A registers ``B_k``
        (``elapsed``, read from the leak table for the word's idle steps), ``u`` and ``(h << f) + 2^(f-1)``,
        stage B the product ``u·B_k`` (on an ECP5 the ``MULT18X18D``'s own output register,
        :func:`registered_multiply`), and the saturate stage adds: ``L_k(u) + h = ((u·B_k + 2^(f-1)) >> f) + h
        = (u·B_k + (h << f) + 2^(f-1)) >> f``. The saturate stage's compares are taken from the product beside
        that add, not after it (``x >> f > hi`` iff ``x − (hi + 1)·2^f ≥ 0``, ``x >> f < lo`` iff
        ``x − lo·2^f < 0``: the two biased sums registered in stage B). The offset moves along. Returns
        ((above hi, below lo, the word), the offset) as the saturate stage's inputs."""
        cfg, F = self.cfg, self.cfg.beta_frac_bits
        lo, hi = cfg.membrane_min, cfg.membrane_max
        u = Signal(signed(cfg.acc_bits), name=f"stored{k}")
        stage[1].append(u.eq(self.membrane_stored[k]))
        # Stage A only registers: the table's word (a block RAM read without an output register, so its data
        # arrives late in the cycle: nothing may follow it but a register), u, and h scaled and biased for the
        # rounding, (h << f) + 2^(f-1). Stage B multiplies, the saturate stage adds once: ((u·B_k + 2^(f-1)) >> f)
        # + h equals (u·B_k + (h << f) + 2^(f-1)) >> f, as h << f is a multiple of 2^f (the floor shift commutes
        # with it). The sum fits acc_bits: |h| < 2^(acc-2) (acc_bits' sizing), |L_k(u)| <= 2^(m-1) <= 2^(acc-2).
        if k == 0:
            self._elapsed_a = Signal.like(self.elapsed, name="elapsed_a")      # one B_k for every lane
            stage[2].append(self._elapsed_a.eq(self.elapsed))
        u_a = Signal(signed(cfg.membrane_bits), name=f"stored_a{k}")   # u is within the membrane range
        hs_a = Signal(signed(len(h) + F + 1), name=f"sum_scaled_a{k}")
        offset_a, offset_b = (Signal.like(offset, name=f"offset_{i}{k}") for i in "ab")
        stage[2] += [u_a.eq(u), hs_a.eq((h << F) + (1 << (F - 1))), offset_a.eq(offset)]   # stage A
        product = Signal(signed(cfg.acc_bits + F + 1), name=f"stored_product_b{k}")       # stage B
        if self.dsp_kind(cfg, platform) == "mult18x18d":
            registered_multiply(m, "elapsed", k, u_a, self._elapsed_a, product, self.advance & self.valid[3])
        else:
            stage[3].append(product.eq(u_a * self._elapsed_a))
        W = max(len(product), len(hs_a)) + 2
        hs_b, hs_lo, hs_hi = (Signal(signed(W), name=f"sum_scaled_{n}{k}") for n in ("b", "lo_b", "hi_b"))
        stage[3] += [hs_b.eq(hs_a), hs_lo.eq(hs_a - (lo << F)), hs_hi.eq(hs_a - ((hi + 1) << F)),
                     offset_b.eq(offset_a)]
        word = Signal(signed(cfg.acc_bits), name=f"sum_b{k}")
        over, under = Signal(name=f"sum_over{k}"), Signal(name=f"sum_under{k}")
        m.d.comb += [word.eq((product + hs_b) >> F), over.eq((product + hs_hi) >= 0), under.eq((product + hs_lo) < 0)]
        return (over, under, word), offset_b

def registered_multiply(m, tag: str, k: int, a_value, b_value, product, enable) -> None:
    """``product`` (a signal) shows ``a_value · b_value`` as registered by an ECP5 ``MULT18X18D``'s own output
    register when ``enable`` (:meth:`NeuronLanes._leak_multiply`; the flush of ``hw.core.touched`` too): the
    instance ``{tag}_mult{k}``. ``a_value`` signed, ``b_value`` unsigned, each fits an 18-bit signed input."""
    a, b, p = Signal(signed(18), name=f"{tag}_a{k}"), Signal(signed(18), name=f"{tag}_b{k}"), Signal(36, name=f"{tag}_p{k}")
    m.d.comb += [a.eq(a_value), b.eq(b_value), product.eq(p[:len(product)])]
    ports = {}
    for i in range(18):
        ports |= {f"i_A{i}": a[i], f"i_B{i}": b[i], f"i_C{i}": C(0, 1)}
    for i in range(len(product)):                 # the product's bits (the rest of P: its sign extension)
        ports[f"o_P{i}"] = p[i]
    m.submodules[f"{tag}_mult{k}"] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="NONE", p_REG_INPUTB_CLK="NONE", p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
        p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_CLK0_DIV="ENABLED", p_HIGHSPEED_CLK="NONE", p_GSR="DISABLED", p_CAS_MATCH_REG="FALSE",
        p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED", p_RESETMODE="SYNC",
        i_SIGNEDA=C(1, 1), i_SIGNEDB=C(1, 1), i_SOURCEA=C(0, 1), i_SOURCEB=C(0, 1),
        i_CLK0=ClockSignal("sync"), i_CE0=enable, i_RST0=ResetSignal("sync", allow_reset_less=True),
        **{f"i_{n}{j}": C(0, 1) for n in ("CLK", "CE", "RST") for j in (1, 2, 3)},
        **ports)

"""The conv event decoder: :class:`ConvDecoder` (``docs/chip.md``, "Convolution") turns a packed event
coordinate into the (weight word, state word) visits of its receptive field, one per cycle; with the
constant-multiply and constant-divide helpers it is built from (no multiplier cells)."""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, C, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import CONV_DECODE_LATENCY, ChipConfig
from hw.core.events import aer_fields, event_index_bits


def const_mul(value, k: int):
    """``value * k`` for a constant ``k >= 0`` as shifts and adds (no multiplier cell: a DSP's delay would
    sit on the decoder's paths)."""
    terms = [value << i for i in range(k.bit_length()) if (k >> i) & 1]
    return sum(terms[1:], terms[0]) if terms else C(0, 1)


def divide_by_constant(value, divisor: int, bound: int):
    """``value // divisor`` for ``0 <= value < bound``: a shift for a power of two, else a multiply by a
    constant reciprocal and a shift (checked exhaustively here, at elaboration)."""
    if divisor == 1:
        return value
    if divisor & (divisor - 1) == 0:
        return value >> (divisor.bit_length() - 1)
    for shift in range(1, 40):
        mul = -(-(1 << shift) // divisor)
        if all((v * mul) >> shift == v // divisor for v in range(bound)):
            return const_mul(value, mul) >> shift
    raise AssertionError("no reciprocal found")   # pragma: no cover (shift 2*bits always works)


class ConvDecoder(wiring.Component):
    """The event decoder and address generator of a conv layer (``docs/chip.md``, "Convolution").

    A token (an event's packed coordinate ``(y << (bx + bc)) | (x << bc) | c`` in the layer's raw input
    shape, or the end of the events) is taken from the source in cycle 0 and moves through two registered
    stages: stage 0 holds its pooled (c, y, x) (fields by the layer's widths, pooling by a constant shift or
    reciprocal multiply), stage 1 its decoded ranges — the first output row ``y'`` and column ``x'`` whose
    receptive field holds it, their counts, and the kernel tap ``(ky0, kx0)`` of the first one. At the end
    of cycle 2 the *visitor* loads the event's first weight word ``w = base + (c·kh + ky0)·kw·G + kx0·G`` and
    state word ``s = base + (y'·W' + x')·G`` (constant multiplies), and from cycle 3 (the fill,
    :data:`hw.config.CONV_DECODE_LATENCY`) issues one (weight word, state word) per cycle: groups ``g``
    innermost (``w += 1``, ``s += 1``), then ``x'`` ascending (``w -= (s + 1)·G - 1``, ``s += 1``), then ``y'``
    ascending (from the row start: ``w -= stride·kw·G``, ``s += W'·G``). The next two tokens are decoded
    while an event is visited, so the visitor takes the next event in the cycle of the current event's last
    visit: no cycle between events. The end token reaches the visitor the same way; the cycle it is there
    is the end-of-events cycle (``end``).

    Layer 0 of a chip with packed input in front of an fc layer (a pool, then fc) uses the same stages
    with one position: its weight row is ``((y // ph)·Wp + x // pw)·C + c``.

    Parameters
    ----------
    cfg : :class:`hw.config.ChipConfig`
        The chip; only its decoded layers (:meth:`hw.config.ChipConfig.decoded`) are decoded. The interface is
        :class:`ConvDecoder.Signature`.
    """

    class Signature(wiring.Signature):
        """Signature of a conv event decoder (the decoder's view).

        Parameters
        ----------
        num_layers : :class:`int`
            Neuron layers of the chip.
        index_bits : :class:`int`
            Width of an event's index (:func:`event_index_bits`).
        weight_depth, state_depth : :class:`int`
            Words of the weight and the state memories.
        groups : :class:`int`
            The most groups of a layer.

        Members
        -------
        layer : :py:`In(range(num_layers))`
            The layer whose events are decoded (constant during its EVENT phase).
        source_valid : :py:`In(1)`
            The source offers a token (gate it with "a decoded layer's EVENT phase").
        source_end : :py:`In(1)`
            The token is the end of the layer's events.
        source_index : :py:`In(index_bits)`
            The event's packed coordinate.
        accept : :py:`Out(1)`
            The decoder takes the offered token at this clock edge (from registers only: a stream's ``ready``).
        take : :py:`Out(1)`
            ``accept & source_valid``: the token is taken.
        issue : :py:`Out(1)`
            A visit is issued this cycle: read ``weight_addr`` and accumulate into ``state_addr``.
        weight_addr : :py:`Out(range(weight_depth + 1))`
            The visit's weight word.
        state_addr : :py:`Out(range(state_depth + 1))`
            The visit's state word.
        group : :py:`Out(range(groups + 1))`
            The visit's group ``g`` (the last one may be partial).
        end : :py:`Out(1)`
            The end-of-events cycle: every event has been issued.
        fill : :py:`Out(1)`
            One of the first ``CONV_DECODE_LATENCY`` cycles with a token in flight and nothing to issue
            (counted in ``cycles``; later idle cycles wait for the host).
        pending : :py:`Out(1)`
            A token is somewhere in the decoder (the core is busy).
        restart : :py:`In(1)`
            Empty the decoder for the next layer or a clear (wins over everything).
        """

        def __init__(self, num_layers: int, index_bits: int, weight_depth: int, state_depth: int, groups: int):
            self.params = (num_layers, index_bits, weight_depth, state_depth, groups)
            super().__init__({
                "layer": In(range(num_layers)),
                "source_valid": In(1), "source_end": In(1), "source_index": In(index_bits),
                "accept": Out(1), "take": Out(1),
                "issue": Out(1), "weight_addr": Out(range(weight_depth + 1)),
                "state_addr": Out(range(state_depth + 1)), "group": Out(range(groups + 1)),
                "end": Out(1), "fill": Out(1), "pending": Out(1),
                "restart": In(1),
            })

        def __eq__(self, other):
            return type(self) is type(other) and self.params == other.params

        def __repr__(self):
            names = ("num_layers", "index_bits", "weight_depth", "state_depth", "groups")
            return "ConvDecoder.Signature(" + ", ".join(f"{n}={v}" for n, v in zip(names, self.params)) + ")"

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        L = cfg.num_layers
        super().__init__(ConvDecoder.Signature(L, event_index_bits(cfg), cfg.weight_depth, cfg.state_depth,
                                               max(cfg.groups(l) for l in range(L))))

    def elaborate(self, platform):
        cfg = self.cfg
        L = cfg.num_layers
        layers = [l for l in range(L) if cfg.decoded(l)]
        m = Module()
        wrange, srange = range(cfg.weight_depth + 1), range(cfg.state_depth + 1)
        max_groups = max(cfg.groups(l) for l in range(L))
        max_c = max(cfg.in_shape(l)[0] for l in layers)
        max_y = max(max(cfg.in_shape(l)[1:]) for l in layers)           # pooled coordinates
        max_o = max(max(cfg.out_shape(l)[1:]) for l in layers)          # output rows/columns
        coord = range(max(max_y, max_o, 8) + 8)                         # also kernel taps (k <= 7)
        D = CONV_DECODE_LATENCY

        # -- stage 0: the pooled coordinate ------------------------------------------------------------
        s0 = SimpleNamespace(valid=Signal(name="s0_valid"), end=Signal(name="s0_end"),
                             c=Signal(range(max_c + 1), name="s0_c"), y=Signal(coord, name="s0_y"),
                             x=Signal(coord, name="s0_x"))
        s1 = SimpleNamespace(valid=Signal(name="s1_valid"), end=Signal(name="s1_end"),
                             c=Signal(range(max_c + 1), name="s1_c"),
                             ylo=Signal(coord, name="s1_ylo"), ky=Signal(coord, name="s1_ky"),
                             ny1=Signal(coord, name="s1_ny1"),
                             xlo=Signal(coord, name="s1_xlo"), kx=Signal(coord, name="s1_kx"),
                             nx1=Signal(coord, name="s1_nx1"),
                             wrow=Signal(wrange, name="s1_wrow"))       # weight word of (c, ky=0, kx=0)
        end_taken = Signal()
        # the visitor
        active, ending = Signal(), Signal()
        waddr, wrow = Signal(wrange, name="visit_waddr"), Signal(wrange, name="visit_wrow")
        saddr, srow = Signal(srange, name="visit_saddr"), Signal(srange, name="visit_srow")
        g = Signal(range(max_groups + 1), name="visit_group")
        xc, yc, nx1 = Signal(coord, name="visit_x_left"), Signal(coord, name="visit_y_left"), Signal(coord)
        fill_count = Signal(range(D + 1))

        def const(values, shape):
            return Array(C(v, shape) for v in values)[self.layer]

        def per_layer(f, default=0):
            return [f(l) if cfg.decoded(l) else default for l in range(L)]
        groups = const([cfg.groups(l) - 1 for l in range(L)], range(max_groups + 1))
        g_last = g == groups
        x_last, y_last = xc == 0, yc == 0
        last_visit = active & g_last & x_last & y_last
        vacant = ~ending & (~active | last_visit)
        s1_move = s1.valid & vacant
        s1_free = ~s1.valid | s1_move
        s0_move = s0.valid & s1_free
        s0_free = ~s0.valid | s0_move
        m.d.comb += [self.accept.eq(s0_free & ~end_taken),
                     self.take.eq(self.accept & self.source_valid)]

        # stage 0: fields of the packed coordinate, pooled
        c0, y0, x0 = Signal.like(s0.c), Signal.like(s0.y), Signal.like(s0.x)
        with m.Switch(self.layer):
            for l in layers:
                with m.Case(l):
                    C_, H, W = cfg.raw_in_shape(l)
                    bc, bx, by = aer_fields((C_, H, W))
                    ph, pw = cfg.pool_window(l)
                    idx = self.source_index
                    m.d.comb += [c0.eq(idx[:bc]),
                                 x0.eq(divide_by_constant(idx[bc:bc + bx], pw, W)),
                                 y0.eq(divide_by_constant(idx[bc + bx:bc + bx + by], ph, H))]
        with m.If(self.take):
            m.d.sync += [s0.valid.eq(1), s0.end.eq(self.source_end), s0.c.eq(c0), s0.y.eq(y0), s0.x.eq(x0)]
            with m.If(self.source_end):
                m.d.sync += end_taken.eq(1)
        with m.Elif(s0_move):
            m.d.sync += s0.valid.eq(0)

        # stage 1: the output rows/columns an event reaches, and the kernel tap of the first
        def reach(q, pad, k, stride, n_out):
            """(first output index, kernel tap there, count - 1) of input index ``q`` along one axis."""
            t = q + pad
            first = Mux(t < k, 0, (t - (k - 1)) if stride == 1 else ((t - (k - 2)) >> 1))
            tap = t - (first if stride == 1 else (first << 1))
            last = t >> (stride - 1)
            last = Mux(last > n_out - 1, n_out - 1, last)
            return first, tap, last - first
        with m.If(s0_move):
            m.d.sync += [s1.valid.eq(1), s1.end.eq(s0.end), s1.c.eq(s0.c)]
            with m.Switch(self.layer):
                for l in layers:
                    with m.Case(l):
                        G = cfg.groups(l)
                        if cfg.layer_kind(l) == "conv":
                            kh, kw = cfg.kernel(l)
                            m.d.sync += s1.wrow.eq(cfg.weight_base(l) + const_mul(s0.c, kh * kw * G))
                        else:                    # fc on a packed input: the row of (y, x, c)
                            Cp, _, Wp = cfg.in_shape(l)
                            m.d.sync += s1.wrow.eq(cfg.weight_base(l) + const_mul(s0.c, G) +
                                                   const_mul(s0.y, Wp * Cp * G) + const_mul(s0.x, Cp * G))
                        if cfg.layer_kind(l) == "conv":
                            (kh, kw), st, (pdh, pdw) = cfg.kernel(l), cfg.stride(l), cfg.padding(l)
                            _, Ho, Wo = cfg.out_shape(l)
                            ylo, ky, ny1 = reach(s0.y, pdh, kh, st, Ho)
                            xlo, kx, nx1_ = reach(s0.x, pdw, kw, st, Wo)
                            m.d.sync += [s1.ylo.eq(ylo), s1.ky.eq(ky), s1.ny1.eq(ny1),
                                         s1.xlo.eq(xlo), s1.kx.eq(kx), s1.nx1.eq(nx1_)]
                        else:                    # fc on a packed input: one position, row from (y, x, c)
                            m.d.sync += [s1.ylo.eq(0), s1.ky.eq(0), s1.ny1.eq(0),
                                         s1.xlo.eq(0), s1.kx.eq(0), s1.nx1.eq(0)]
        with m.Elif(s1_move):
            m.d.sync += s1.valid.eq(0)

        # stage 2 (into the visitor): first weight and state words; the kernel taps' offsets from tables of
        # at most 7 constants, the positions' by constant shifts and adds (no multiplier), per layer
        w_start, s_start = Signal(wrange), Signal(srange)
        with m.Switch(self.layer):
            for l in layers:
                with m.Case(l):
                    G = cfg.groups(l)
                    if cfg.layer_kind(l) == "conv":
                        (kh, kw), Wo = cfg.kernel(l), cfg.out_shape(l)[2]
                        ky_off = Array(C(v * kw * G, wrange) for v in range(kh))[s1.ky[:3]]
                        kx_off = Array(C(v * G, wrange) for v in range(kw))[s1.kx[:3]]
                        m.d.comb += [w_start.eq(s1.wrow + ky_off + kx_off),
                                     s_start.eq(cfg.bank_base(l) + const_mul(s1.ylo, Wo * G) +
                                                const_mul(s1.xlo, G))]
                    else:
                        m.d.comb += [w_start.eq(s1.wrow), s_start.eq(cfg.bank_base(l))]

        # the visitor: one (weight word, state word) per cycle
        def signed_const(values):
            bits = max(max(abs(v) for v in values).bit_length() + 1, 2)
            return const(values, signed(bits))
        x_step = signed_const(per_layer(lambda l: 1 - (cfg.stride(l) + 1) * cfg.groups(l)))
        y_step_w = signed_const(per_layer(lambda l: -cfg.stride(l) * cfg.kernel(l)[1] * cfg.groups(l)))
        y_step_s = const(per_layer(lambda l: cfg.out_shape(l)[2] * cfg.groups(l)), srange)
        with m.If(active):
            with m.If(~g_last):
                m.d.sync += [waddr.eq(waddr + 1), saddr.eq(saddr + 1), g.eq(g + 1)]
            with m.Elif(~x_last):
                m.d.sync += [waddr.eq(waddr + x_step), saddr.eq(saddr + 1), g.eq(0), xc.eq(xc - 1)]
            with m.Elif(~y_last):
                next_wrow, next_srow = wrow + y_step_w, srow + y_step_s
                m.d.sync += [waddr.eq(next_wrow), wrow.eq(next_wrow), saddr.eq(next_srow), srow.eq(next_srow),
                             g.eq(0), xc.eq(nx1), yc.eq(yc - 1)]
        with m.If(s1_move):
            with m.If(s1.end):
                m.d.sync += [ending.eq(1), active.eq(0)]
            with m.Else():
                m.d.sync += [active.eq(1), waddr.eq(w_start), wrow.eq(w_start), saddr.eq(s_start),
                             srow.eq(s_start), g.eq(0), xc.eq(s1.nx1), nx1.eq(s1.nx1), yc.eq(s1.ny1)]
        with m.Elif(last_visit):
            m.d.sync += active.eq(0)

        idle = ~active & ~ending
        m.d.comb += [
            self.issue.eq(active), self.weight_addr.eq(waddr), self.state_addr.eq(saddr), self.group.eq(g),
            self.end.eq(ending),
            self.fill.eq(idle & (self.take | s0.valid | s1.valid) & (fill_count != D)),
            self.pending.eq(s0.valid | s1.valid | active | ending | end_taken),
        ]
        with m.If(self.fill):
            m.d.sync += fill_count.eq(fill_count + 1)
        with m.If(self.restart):
            m.d.sync += [s0.valid.eq(0), s1.valid.eq(0), active.eq(0), ending.eq(0), end_taken.eq(0),
                         fill_count.eq(0)]
        return m


"""Protocol bridge: byte streams from/to a UART <-> the core's write bus, read bus and event streams.

Implements the board side of :mod:`hw.protocol` (frame format, commands, retries, resynchronisation).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw import protocol as P
from hw.config import ChipConfig
from hw.core import read_bus_signature, write_bus_signature, event_layout


def crc8_step(crc, byte):
    """One byte of CRC-8/0x07 as XOR logic. The update is linear over GF(2) in ``x = crc ^ byte``, so each
    output bit is the XOR of the input bits whose basis response (from :func:`hw.protocol.crc8`) has it set."""
    x = crc ^ byte
    basis = [P.crc8(bytes([1 << k])) for k in range(8)]
    bits = []
    for j in range(8):
        terms = [x[k] for k in range(8) if (basis[k] >> j) & 1]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc ^ t
        bits.append(acc)
    return Cat(*bits)


class ProtocolBridge(wiring.Component):
    """``rx``/``tx``: byte streams (from/to the UART). ``wr``/``rd``/``events_in``/``events_out``/``busy``
    connect to :class:`hw.core.LifCore`. ``byte_cycles`` is a byte time in clock cycles (frame timeout)."""

    def __init__(self, cfg: ChipConfig, byte_cycles: int):
        self.cfg, self.lay = cfg, P.Layout(cfg)
        self.timeout = byte_cycles * P.FRAME_TIMEOUT_BYTES
        ev = stream.Signature(event_layout(cfg))
        super().__init__({
            "rx": In(stream.Signature(unsigned(8))), "tx": Out(stream.Signature(unsigned(8))),
            "wr": Out(write_bus_signature(self.lay.bus)), "rd": Out(read_bus_signature(self.lay.bus)),
            "events_in": Out(ev), "events_out": In(ev), "busy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        lay = self.lay
        buf = Array(Signal(8, name=f"buf{i}") for i in range(lay.max_payload))
        seq, cmd, length, count = Signal(8), Signal(8), Signal(8), Signal(8)
        crc = Signal(8)
        last_seq, have_last = Signal(8), Signal()
        timer = Signal(range(self.timeout + 1))

        # -- response framer: SYNC, SEQ, CMD, LEN, payload, CRC --------------------------------------------
        q = max(lay.read_data_bytes, lay.event_bytes, 5)
        r_buf = Array(Signal(8, name=f"rbuf{i}") for i in range(q))
        r_seq, r_cmd, r_len, r_idx, r_crc = Signal(8), Signal(8), Signal(8), Signal(8), Signal(8)
        r_start, r_busy = Signal(), Signal()
        r_phase = Signal(range(6))          # 0 sync, 1 seq, 2 cmd, 3 len, 4 payload, 5 crc
        r_byte = Signal(8)
        m.d.comb += r_byte.eq(Array([Const(P.SYNC, 8), r_seq, r_cmd, r_len, r_buf[r_idx], r_crc])[r_phase])
        m.d.comb += [self.tx.payload.eq(r_byte), self.tx.valid.eq(r_busy)]
        with m.If(r_start):
            m.d.sync += [r_busy.eq(1), r_phase.eq(0), r_idx.eq(0), r_crc.eq(0)]
        with m.Elif(r_busy & self.tx.ready):
            with m.If(r_phase != 0):
                m.d.sync += r_crc.eq(crc8_step(r_crc, r_byte))
            with m.Switch(r_phase):
                with m.Case(0, 1, 2):
                    m.d.sync += r_phase.eq(r_phase + 1)
                with m.Case(3):
                    m.d.sync += r_phase.eq(Mux(r_len == 0, 5, 4))
                with m.Case(4):
                    m.d.sync += r_idx.eq(r_idx + 1)
                    with m.If(r_idx == r_len - 1):
                        m.d.sync += r_phase.eq(5)
                with m.Case(5):
                    m.d.sync += r_busy.eq(0)

        p_start = Signal()                   # the parser starts a response this cycle (has priority)

        def respond(cmd_code, seq_value, payload_bytes, start=p_start):
            m.d.comb += start.eq(1)
            m.d.sync += [r_cmd.eq(cmd_code), r_seq.eq(seq_value), r_len.eq(len(payload_bytes))]
            m.d.sync += [r_buf[i].eq(b) for i, b in enumerate(payload_bytes)]

        def field(start, n):
            return Cat(*(buf[start + i] for i in range(n)))

        def byte_list(value, n):
            return [value[8 * i:8 * (i + 1)] for i in range(n)]

        # -- output events become OUT_EVENT frames when nothing else is being said -------------------------
        out_seq = Signal(8)
        out_word = Signal(len(self.events_out.payload.as_value()))
        m.d.comb += out_word.eq(self.events_out.payload.as_value())

        # -- command parser and executor -----------------------------------------------------------------
        m.d.comb += self.rx.ready.eq(0)
        rx_byte = self.rx.payload
        got = self.rx.valid & self.rx.ready
        with m.FSM(name="link"):
            with m.State("HUNT"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got & (rx_byte == P.SYNC)):
                    m.d.sync += [crc.eq(0), timer.eq(0)]
                    m.next = "SEQ"
            def receive(on_byte):
                """Accept a byte (``on_byte`` handles it) or, after a frame timeout of silence, NAK."""
                m.d.comb += self.rx.ready.eq(1)
                with m.If(got):
                    m.d.sync += timer.eq(0)
                    on_byte()
                with m.Elif(timer == self.timeout):
                    m.next = "NAK_TIMEOUT"
                with m.Else():
                    m.d.sync += timer.eq(timer + 1)

            def header(reg, nxt):
                def on_byte():
                    m.d.sync += [reg.eq(rx_byte), crc.eq(crc8_step(crc, rx_byte)), count.eq(0)]
                    m.next = nxt
                return on_byte

            def payload_byte():
                m.d.sync += [buf[count].eq(rx_byte), crc.eq(crc8_step(crc, rx_byte)), count.eq(count + 1)]
                with m.If(count == length - 1):
                    m.next = "CRC"

            def crc_byte():
                with m.If(rx_byte != crc):
                    m.next = "NAK_CRC"
                with m.Else():
                    m.next = "DECODE"

            for state, reg, nxt in (("SEQ", seq, "CMD"), ("CMD", cmd, "LEN"), ("LEN", length, "LENCHK")):
                with m.State(state):
                    receive(header(reg, nxt))
            with m.State("LENCHK"):
                with m.If(length > lay.max_payload):
                    m.next = "NAK_COMMAND"
                with m.Elif(length == 0):
                    m.next = "CRC"
                with m.Else():
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                receive(payload_byte)
            with m.State("CRC"):
                receive(crc_byte)
            with m.State("DECODE"):
                ok_len = Signal()
                with m.Switch(cmd):
                    for code in (P.WRITE, P.READ, P.EVENT, P.PING):
                        with m.Case(code):
                            m.d.comb += ok_len.eq(length == lay.expected_length(code))
                retry = have_last & (seq == last_seq) & ((cmd == P.WRITE) | (cmd == P.EVENT))
                with m.If(~ok_len):
                    m.next = "NAK_COMMAND"
                with m.Elif(retry):
                    m.next = "ACK"
                with m.Elif(cmd == P.WRITE):
                    m.d.comb += [self.wr.addr.eq(field(0, lay.addr_bytes)),
                                 self.wr.data.eq(field(lay.addr_bytes, lay.data_bytes)), self.wr.en.eq(1)]
                    m.d.sync += [last_seq.eq(seq), have_last.eq(1)]
                    m.next = "WAIT_IDLE"
                with m.Elif(cmd == P.READ):
                    m.next = "READ"
                with m.Elif(cmd == P.EVENT):
                    m.d.sync += [last_seq.eq(seq), have_last.eq(1)]
                    m.next = "EVENT"
                with m.Else():
                    m.next = "PONG"
            with m.State("WAIT_IDLE"):
                with m.If(~self.busy):
                    m.next = "ACK"
            with m.State("READ"):
                m.d.comb += self.rd.addr.eq(field(0, lay.read_addr_bytes))
                m.next = "READ_REPLY"
            with m.State("READ_REPLY"):
                with m.If(~r_busy):
                    respond(P.READ_DATA, seq, byte_list(self.rd.data, lay.read_data_bytes))
                    m.next = "HUNT"
            with m.State("EVENT"):
                m.d.comb += [self.events_in.valid.eq(1),
                             self.events_in.payload.as_value().eq(field(0, lay.event_bytes))]
                with m.If(self.events_in.ready):
                    m.next = "ACK"
            for state, code, payload in (
                    ("ACK", P.ACK, []), ("PONG", P.PONG, [Const(P.VERSION, 8)] + byte_list(Const(lay.config_hash, 32), 4)),
                    ("NAK_CRC", P.NAK, [Const(P.NAK_CRC, 8)]), ("NAK_COMMAND", P.NAK, [Const(P.NAK_COMMAND, 8)]),
                    ("NAK_TIMEOUT", P.NAK, [Const(P.NAK_TIMEOUT, 8)])):
                with m.State(state):
                    with m.If(~r_busy):
                        respond(code, seq, payload)
                        m.next = "HUNT"
        # -- output events become OUT_EVENT frames whenever the framer is free (in any parser state) -----
        o_start = Signal()
        with m.If(~r_busy & ~p_start & self.events_out.valid):
            respond(P.OUT_EVENT, out_seq, byte_list(out_word, lay.event_bytes), start=o_start)
            m.d.comb += self.events_out.ready.eq(1)
            m.d.sync += out_seq.eq(out_seq + 1)
        m.d.comb += r_start.eq(p_start | o_start)
        return m

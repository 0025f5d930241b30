"""Protocol bridge: the board side of :mod:`hw.protocol` between a UART's byte streams and the core.

Four components, chained by streams::

    UART bytes ─► FrameReceiver ─► CommandExecutor ─► ReplyMerger ─► FrameTransmitter ─► UART bytes
                                   │ wr, rd, events_in   ▲ events_out
                                   ▼                     │
                                           the core

* :class:`FrameReceiver` turns bytes into checked frames: it hunts for SYNC, collects SEQ, CMD, LEN
  and the payload, checks the CRC and reports a bad CRC, an overlong frame or a timeout as the frame's
  ``error``.
* :class:`CommandExecutor` carries out each frame on the core's buses and answers it (ACK, READ_DATA,
  PONG or NAK); a repeated WRITE or EVENT (same SEQ) is answered without running twice.
* :class:`ReplyMerger` puts the answers and the core's output events (as OUT_EVENT frames) into one
  stream of frames.
* :class:`FrameTransmitter` turns frames into bytes, appending the CRC.

:class:`ProtocolBridge` is the four together.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from hw import protocol as P
from hw.config import ChipConfig
from hw.core import ReadBusSignature, WriteBusSignature, event_layout


class FrameError(enum.Enum, shape=2):
    """Why a received frame is invalid. The values are the NAK codes of :mod:`hw.protocol`."""
    NONE = 0
    CRC = P.NAK_CRC
    LENGTH = P.NAK_COMMAND
    TIMEOUT = P.NAK_TIMEOUT


def _frame_fields(max_payload: int) -> dict:
    return {"seq": unsigned(8), "cmd": unsigned(8), "length": unsigned(8),
            "payload": data.ArrayLayout(unsigned(8), max_payload)}


def frame_layout(max_payload: int) -> data.StructLayout:
    """A frame's fields; ``payload`` holds ``length`` valid bytes (at most ``max_payload``)."""
    return data.StructLayout(_frame_fields(max_payload))


def received_frame_layout(max_payload: int) -> data.StructLayout:
    """A received frame: :func:`frame_layout`'s fields and its :class:`FrameError`."""
    return data.StructLayout({**_frame_fields(max_payload), "error": FrameError})


def as_bytes(value, n: int) -> list:
    """The ``n`` bytes of ``value``, least significant first."""
    return [value[8 * i:8 * (i + 1)] for i in range(n)]


class FrameReceiver(wiring.Component):
    """Bytes in, checked frames out.

    A frame is held on ``frame`` until it is taken; no byte is accepted meanwhile. A frame whose
    ``error`` is not ``NONE`` ends early (after the bad CRC, the overlong LEN or the silence), and the
    receiver then hunts for the next SYNC byte.

    Parameters
    ----------
    max_payload : :class:`int`
        Longest payload accepted; a longer LEN is a ``LENGTH`` error.
    timeout : :class:`int`
        Clock cycles without a byte inside a frame before it is a ``TIMEOUT`` error.
    """

    class Signature(wiring.Signature):
        """Signature of a frame receiver.

        Members
        -------
        bytes: :py:`In(stream.Signature(8))`
            Received bytes.
        frame: :py:`Out(stream.Signature(received_frame_layout(max_payload)))`
            Frames, each with its :class:`FrameError`.
        """

        def __init__(self, max_payload: int):
            super().__init__({"bytes": In(stream.Signature(unsigned(8))),
                              "frame": Out(stream.Signature(received_frame_layout(max_payload)))})

    def __init__(self, max_payload: int, timeout: int):
        self.max_payload, self.timeout = max_payload, timeout
        super().__init__(self.Signature(max_payload))

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = P.CRC8.create()
        byte, frame = self.bytes.payload, self.frame.payload
        arrived = self.bytes.valid & self.bytes.ready
        received = Signal(range(self.max_payload))          # payload bytes received so far
        silence = Signal(range(self.timeout + 1))           # cycles since the last byte
        m.d.comb += crc.data.eq(byte)
        with m.If(arrived | ~self.bytes.ready):
            m.d.sync += silence.eq(0)
        with m.Elif(silence != self.timeout):
            m.d.sync += silence.eq(silence + 1)

        def fail(error):
            m.d.sync += frame.error.eq(error)
            m.next = "DONE"

        def receive():
            """Accept a byte; returns the condition under which one arrived. Silence is a TIMEOUT."""
            m.d.comb += self.bytes.ready.eq(1)
            with m.If(~arrived & (silence == self.timeout)):
                fail(FrameError.TIMEOUT)
            return arrived

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.bytes.ready.eq(1)
                with m.If(arrived & (byte == P.SYNC)):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += frame.error.eq(FrameError.NONE)
                    m.next = "SEQ"
            for state, field, next_state in (("SEQ", frame.seq, "CMD"), ("CMD", frame.cmd, "LENGTH")):
                with m.State(state):
                    with m.If(receive()):
                        m.d.comb += crc.valid.eq(1)
                        m.d.sync += field.eq(byte)
                        m.next = next_state
            with m.State("LENGTH"):
                with m.If(receive()):
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += [frame.length.eq(byte), received.eq(0)]
                    with m.If(byte > self.max_payload):
                        fail(FrameError.LENGTH)
                    with m.Elif(byte == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with m.If(receive()):
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += [frame.payload[received].eq(byte), received.eq(received + 1)]
                    with m.If(received == frame.length - 1):
                        m.next = "CRC"
            with m.State("CRC"):
                with m.If(receive()):
                    with m.If(byte != crc.crc):
                        fail(FrameError.CRC)
                    with m.Else():
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.frame.valid.eq(1)
                with m.If(self.frame.ready):
                    m.next = "HUNT"
        return m


class FrameTransmitter(wiring.Component):
    """Frames in, bytes out: SYNC, SEQ, CMD, LEN, ``length`` payload bytes and the CRC.

    Parameters
    ----------
    max_payload : :class:`int`
        Longest payload of a frame.
    """

    class Signature(wiring.Signature):
        """Signature of a frame transmitter.

        Members
        -------
        frame: :py:`In(stream.Signature(frame_layout(max_payload)))`
            Frames to send; one is taken whenever the previous one has been sent.
        bytes: :py:`Out(stream.Signature(8))`
            Bytes to send.
        """

        def __init__(self, max_payload: int):
            super().__init__({"frame": In(stream.Signature(frame_layout(max_payload))),
                              "bytes": Out(stream.Signature(unsigned(8)))})

    def __init__(self, max_payload: int):
        self.max_payload = max_payload
        super().__init__(self.Signature(max_payload))

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = P.CRC8.create()
        frame = Signal(frame_layout(self.max_payload))      # the frame being sent
        sent = Signal(range(self.max_payload))              # payload bytes sent so far
        m.d.comb += crc.data.eq(self.bytes.payload)

        def send(byte, checked=True):
            """Offer ``byte``; returns the condition under which it is taken. ``checked``: add it to the CRC."""
            m.d.comb += [self.bytes.valid.eq(1), self.bytes.payload.eq(byte),
                         crc.valid.eq(self.bytes.ready & checked)]
            return self.bytes.ready

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.frame.ready.eq(1), crc.start.eq(1)]
                with m.If(self.frame.valid):
                    m.d.sync += frame.eq(self.frame.payload)
                    m.next = "SYNC"
            with m.State("SYNC"):
                with m.If(send(P.SYNC, checked=False)):
                    m.next = "SEQ"
            with m.State("SEQ"):
                with m.If(send(frame.seq)):
                    m.next = "CMD"
            with m.State("CMD"):
                with m.If(send(frame.cmd)):
                    m.next = "LENGTH"
            with m.State("LENGTH"):
                with m.If(send(frame.length)):
                    m.d.sync += sent.eq(0)
                    with m.If(frame.length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with m.If(send(frame.payload[sent])):
                    m.d.sync += sent.eq(sent + 1)
                    with m.If(sent == frame.length - 1):
                        m.next = "CRC"
            with m.State("CRC"):
                with m.If(send(crc.crc, checked=False)):
                    m.next = "IDLE"
        return m


class CommandExecutor(wiring.Component):
    """Carries out received frames on the core's buses and answers each one.

    A frame is held on ``command`` until its answer has been taken from ``answer``. A frame with an
    error, an unknown command or a wrong length is answered with NAK. A WRITE or EVENT with the SEQ of
    the last executed one is a retry: it is answered with ACK and not executed again.
    """

    class Signature(wiring.Signature):
        """Signature of a command executor.

        Members
        -------
        command: :py:`In(stream.Signature(received_frame_layout(fmt.max_payload)))`
            Checked frames from the :class:`FrameReceiver`.
        answer: :py:`Out(stream.Signature(frame_layout(fmt.max_reply)))`
            One ACK, NAK, PONG or READ answer per frame.
        wr: :py:`Out(WriteBusSignature(fmt.bus))`
            The core's word write bus.
        rd: :py:`Out(ReadBusSignature(fmt.bus))`
            The core's word read bus.
        events_in: :py:`Out(event_stream_signature(cfg))`
            Input address events to the core.
        busy: :py:`In(1)`
            The core's ``busy``: a step is under way.
        """

        def __init__(self, cfg: ChipConfig):
            fmt = P.FrameFormat(cfg)
            super().__init__({
                "command": In(stream.Signature(received_frame_layout(fmt.max_payload))),
                "answer": Out(stream.Signature(frame_layout(fmt.max_reply))),
                "wr": Out(WriteBusSignature(fmt.bus)), "rd": Out(ReadBusSignature(fmt.bus)),
                "events_in": Out(stream.Signature(event_layout(cfg))), "busy": In(1),
            })

    def __init__(self, cfg: ChipConfig):
        self.format = P.FrameFormat(cfg)
        super().__init__(self.Signature(cfg))

    def elaborate(self, platform):
        m = Module()
        fmt, command = self.format, self.command.payload
        last_seq, executed_any = Signal(8), Signal()
        read_data = Signal.like(self.rd.data)

        def argument(offset, n):
            return command.payload[offset:offset + n].as_value()

        def executed():
            m.d.sync += [last_seq.eq(command.seq), executed_any.eq(1)]

        def answer_with(cmd, payload=()):
            """Offer the answer; once it is taken, so is the command frame."""
            frame = self.answer.payload
            m.d.comb += [self.answer.valid.eq(1), frame.seq.eq(command.seq), frame.cmd.eq(cmd),
                         frame.length.eq(len(payload))]
            m.d.comb += [frame.payload[i].eq(byte) for i, byte in enumerate(payload)]
            with m.If(self.answer.ready):
                m.d.comb += self.command.ready.eq(1)
                m.next = "IDLE"

        length_ok = Signal()
        with m.Switch(command.cmd):
            for cmd in P.COMMANDS:
                with m.Case(cmd):
                    m.d.comb += length_ok.eq(command.length == fmt.expected_length(cmd))
        retry = executed_any & (command.seq == last_seq) & ((command.cmd == P.WRITE) | (command.cmd == P.EVENT))

        # the read address is the frame's first bytes whatever the state (reads have no side effects): it is
        # stable from the cycle the frame arrives, so a register may sit between it and the core
        m.d.comb += self.rd.addr.eq(argument(0, fmt.read_addr_bytes))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.command.valid):
                    with m.If((command.error != FrameError.NONE) | ~length_ok):
                        m.next = "NAK"
                    with m.Elif(retry):
                        m.next = "ACK"
                    with m.Elif(command.cmd == P.WRITE):
                        m.next = "WRITE"
                    with m.Elif(command.cmd == P.READ):
                        m.next = "READ"
                    with m.Elif(command.cmd == P.EVENT):
                        m.next = "EVENT"
                    with m.Else():
                        m.next = "PONG"
            with m.State("WRITE"):
                m.d.comb += [self.wr.addr.eq(argument(0, fmt.addr_bytes)),
                             self.wr.data.eq(argument(fmt.addr_bytes, fmt.data_bytes)), self.wr.en.eq(1)]
                executed()
                m.next = "WAIT_IDLE"
            with m.State("WAIT_IDLE"):
                with m.If(~self.busy):
                    m.next = "ACK"
            with m.State("READ"):               # the read bus answers one cycle after the address
                m.next = "READ_DATA"
            with m.State("READ_DATA"):
                m.d.sync += read_data.eq(self.rd.data)
                m.next = "ANSWER_READ"
            with m.State("ANSWER_READ"):
                answer_with(P.READ_DATA, as_bytes(read_data, fmt.read_data_bytes))
            with m.State("EVENT"):
                m.d.comb += [self.events_in.valid.eq(1),
                             self.events_in.payload.as_value().eq(argument(0, fmt.event_bytes))]
                with m.If(self.events_in.ready):
                    executed()
                    m.next = "ACK"
            with m.State("ACK"):
                answer_with(P.ACK)
            with m.State("PONG"):
                answer_with(P.PONG, [Const(P.VERSION, 8)] + as_bytes(Const(fmt.config_hash, 32), 4))
            with m.State("NAK"):
                reason = Mux(command.error == FrameError.NONE, P.NAK_COMMAND, command.error.as_value())
                answer_with(P.NAK, [reason])
        return m


class ReplyMerger(wiring.Component):
    """Answers and the core's output events into one stream of frames to the host.

    An output event becomes an OUT_EVENT frame whose SEQ counts output events modulo 256. A waiting
    answer goes first, except that an output event already offered stays offered until it is taken.

    Parameters
    ----------
    cfg : :class:`ChipConfig`
        The chip (event word and frame sizes).
    """

    class Signature(wiring.Signature):
        """Signature of a reply merger.

        Members
        -------
        answer: :py:`In(stream.Signature(frame_layout(fmt.max_reply)))`
            Answers from the :class:`CommandExecutor`.
        events: :py:`In(event_stream_signature(cfg))`
            The core's output address events.
        reply: :py:`Out(stream.Signature(frame_layout(fmt.max_reply)))`
            Frames to the :class:`FrameTransmitter`.
        """

        def __init__(self, cfg: ChipConfig):
            frames = stream.Signature(frame_layout(P.FrameFormat(cfg).max_reply))
            super().__init__({"answer": In(frames), "events": In(stream.Signature(event_layout(cfg))),
                              "reply": Out(frames)})

    def __init__(self, cfg: ChipConfig):
        self.format = P.FrameFormat(cfg)
        super().__init__(self.Signature(cfg))

    def elaborate(self, platform):
        m = Module()
        event_frame = Signal(frame_layout(self.format.max_reply))
        event_seq = Signal(8)
        event_offered = Signal()            # an output event was offered and not taken: keep offering it
        choose_event = Signal()
        m.d.comb += [event_frame.seq.eq(event_seq), event_frame.cmd.eq(P.OUT_EVENT),
                     event_frame.length.eq(self.format.event_bytes),
                     event_frame.payload.as_value().eq(self.events.payload.as_value()),
                     choose_event.eq(event_offered | (self.events.valid & ~self.answer.valid))]
        with m.If(choose_event):
            m.d.comb += [self.reply.valid.eq(self.events.valid), self.reply.payload.eq(event_frame),
                         self.events.ready.eq(self.reply.ready)]
        with m.Else():
            m.d.comb += [self.reply.valid.eq(self.answer.valid), self.reply.payload.eq(self.answer.payload),
                         self.answer.ready.eq(self.reply.ready)]
        m.d.sync += event_offered.eq(choose_event & self.events.valid & ~self.reply.ready)
        with m.If(self.events.valid & self.events.ready):
            m.d.sync += event_seq.eq(event_seq + 1)
        return m


class ProtocolBridge(wiring.Component):
    """The board side of the host link: :class:`FrameReceiver`, :class:`CommandExecutor`,
    :class:`ReplyMerger` and :class:`FrameTransmitter` in a chain.

    ``rx``/``tx`` are byte streams from/to the UART; ``wr``/``rd``/``events_in``/``events_out``/``busy``
    connect to :class:`hw.core.LifCore`. ``byte_cycles`` is a byte time in clock cycles (for the frame
    timeout of :data:`hw.protocol.FRAME_TIMEOUT_BYTES` byte times).
    """

    def __init__(self, cfg: ChipConfig, byte_cycles: int):
        self.cfg, self.format = cfg, P.FrameFormat(cfg)
        self.timeout = byte_cycles * P.FRAME_TIMEOUT_BYTES
        events = stream.Signature(event_layout(cfg))
        super().__init__({
            "rx": In(stream.Signature(unsigned(8))), "tx": Out(stream.Signature(unsigned(8))),
            "wr": Out(WriteBusSignature(self.format.bus)), "rd": Out(ReadBusSignature(self.format.bus)),
            "events_in": Out(events), "events_out": In(events), "busy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = FrameReceiver(self.format.max_payload, self.timeout)
        m.submodules.executor = executor = CommandExecutor(self.cfg)
        m.submodules.merger = merger = ReplyMerger(self.cfg)
        m.submodules.transmitter = transmitter = FrameTransmitter(self.format.max_reply)
        wiring.connect(m, wiring.flipped(self.rx), receiver.bytes)
        wiring.connect(m, receiver.frame, executor.command)
        wiring.connect(m, executor.answer, merger.answer)
        wiring.connect(m, wiring.flipped(self.events_out), merger.events)
        wiring.connect(m, merger.reply, transmitter.frame)
        wiring.connect(m, transmitter.bytes, wiring.flipped(self.tx))
        for bus in ("wr", "rd", "events_in"):
            wiring.connect(m, getattr(executor, bus), wiring.flipped(getattr(self, bus)))
        m.d.comb += executor.busy.eq(self.busy)
        return m

"""aioquic's `QuicConnection` with receive windows that follow the application's reads.

aioquic grants flow-control credit as data *arrives* (it doubles a stream's window once half
of it is used), so a peer can outrun a reader that never reads and the receiver buffers
without limit. Here a stream's window is `consumed + window`: it moves only when the
application takes bytes (`consume`), so what one connection buffers is bounded by its
window. The peer may open one unidirectional stream and no bidirectional one: trimicro
carries one framed stream each way, and a peer opening more cannot make us buffer more.

The overrides reach into aioquic 1.7's internals (`_write_stream_limits`, `_streams`,
`_state`, `_close_event`); tests/session/test_quic_flow.py pins their behaviour.
"""

from __future__ import annotations

from typing import Any

from aioquic.buffer import UINT_VAR_MAX_SIZE
from aioquic.quic.connection import END_STATES, Limit, QuicConnection, QuicConnectionState
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.stream import QuicStream

__all__ = ["WindowedQuicConnection"]

_MAX_STREAM_DATA_CAPACITY = 1 + 2 * UINT_VAR_MAX_SIZE


class WindowedQuicConnection(QuicConnection):
    """A `QuicConnection` whose stream windows move as the application reads.

    `window` is the configuration's `max_stream_data` (the initial window the peer is told).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._window: int = self.configuration.max_stream_data
        self._consumed: dict[int, int] = {}
        self._local_max_streams_bidi = Limit(
            frame_type=QuicFrameType.MAX_STREAMS_BIDI, name="max_streams_bidi", value=0
        )
        self._local_max_streams_uni = Limit(
            frame_type=QuicFrameType.MAX_STREAMS_UNI, name="max_streams_uni", value=1
        )

    def consume(self, stream_id: int, size: int) -> bool:
        """The application took `size` bytes of `stream_id`; True when the window moved
        (the caller transmits). Moves in steps of half a window, to batch the updates."""
        consumed = self._consumed.get(stream_id, 0) + size
        self._consumed[stream_id] = consumed
        stream = self._streams.get(stream_id)
        if stream is None or consumed + self._window - stream.max_stream_data_local < (
            self._window // 2
        ):
            return False
        stream.max_stream_data_local = consumed + self._window
        return True

    def send_buffered(self, stream_id: int) -> int:
        """Bytes written to `stream_id` and not yet acknowledged (sent or not)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return stream.sender._buffer_stop - stream.sender._buffer_start

    def send_finished(self, stream_id: int) -> bool:
        """Everything written to `stream_id`, FIN included, has been acknowledged."""
        stream = self._streams.get(stream_id)
        return stream is None or stream.sender.is_finished

    @property
    def ended(self) -> bool:
        """Closing, draining or terminated: the connection carries nothing more."""
        return self._state in END_STATES

    @property
    def established(self) -> bool:
        """A packet from the peer has been decrypted (a server's first Initial was real)."""
        return self._state != QuicConnectionState.FIRSTFLIGHT

    @property
    def close_event(self) -> ConnectionTerminated | None:
        """Why the connection ended (either side's CONNECTION_CLOSE, or the idle timeout)."""
        return self._close_event

    @property
    def peer_certificate(self) -> Any:
        """The server's certificate once the handshake got that far (clients only)."""
        tls = getattr(self, "tls", None)  # created with the first Initial
        return None if tls is None else tls._peer_certificate

    def _write_stream_limits(self, builder: Any, space: Any, stream: QuicStream) -> None:
        # Only announce the window `consume` set; aioquic's own version would also double it.
        if stream.max_stream_data_local_sent == stream.max_stream_data_local:
            return
        buf = builder.start_frame(
            QuicFrameType.MAX_STREAM_DATA,
            capacity=_MAX_STREAM_DATA_CAPACITY,
            handler=self._on_max_stream_data_delivery,
            handler_args=(stream,),
        )
        buf.push_uint_var(stream.stream_id)
        buf.push_uint_var(stream.max_stream_data_local)
        stream.max_stream_data_local_sent = stream.max_stream_data_local

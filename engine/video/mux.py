"""Assemble the final file: segment video packets back to back, plus the input's audio
and subtitles for the processed range, copied without re-encoding where the output
container allows it (audio re-encoded to AAC, or Opus for WebM, only where it does not).
"""

from __future__ import annotations

import heapq
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import cast

import av

from ghost_engine.errors import OutputError, UserInputError, one_line
from ghost_engine.video.label import video_metadata
from ghost_engine.video.media import ffmpeg_reason
from ghost_engine.video.output import translate_write_error

_log = logging.getLogger(__name__)

# output suffix -> FFmpeg muxer
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".nut": "nut",
}


def muxer_for(path: Path) -> str:
    """The FFmpeg muxer for an output file name, or an OutputError naming the choices."""
    fmt = CONTAINERS.get(Path(path).suffix.lower())
    if fmt is None:
        raise OutputError(
            f"cannot tell the video container from '{Path(path).name}'; "
            f"use one of {', '.join(CONTAINERS)}",
            path=path,
            allowed=tuple(CONTAINERS),
        )
    return fmt


def supported_codecs(format_name: str) -> set[str]:
    """Codec names a muxer can store."""
    with av.open(io.BytesIO(), mode="w", format=format_name) as probe:
        return set(probe.supported_codecs)


@dataclass
class MuxResult:
    """What happened to each non-video stream."""

    audio: list[str] = field(default_factory=list)  # "copied aac", "re-encoded pcm -> aac"
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimeRange:
    """Input time range [start_s, end_s) that becomes output time 0 onwards."""

    start_s: float = 0.0
    end_s: float | None = None


def mux_output(segments: list[Path], source: Path, dest: Path, time_range: TimeRange) -> MuxResult:
    """Write `dest` (its muxer from the suffix) from segment files and `source`'s audio."""
    fmt = muxer_for(dest)
    storable = supported_codecs(fmt)
    result = MuxResult()
    options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
    try:
        out = av.open(str(dest), mode="w", format=fmt, options=options)
    except OSError as exc:
        raise translate_write_error(exc, dest) from exc
    inputs: list[av.container.InputContainer] = []
    try:
        out.metadata.update(video_metadata())
        first = _open_segment(segments[0])
        inputs.append(first)
        if not first.streams.video:
            raise UserInputError(
                f"the finished segment {one_line(str(segments[0]))} has no video; run without "
                "--resume to start over",
                path=segments[0],
                option="--resume",
            )
        vout = out.add_stream_from_template(first.streams.video[0])
        iterators = [_video_packets(segments, vout)]
        src = av.open(str(source))
        inputs.append(src)
        for stream in list(src.streams.audio) + list(src.streams.subtitles):
            feed = _plan_stream(str(source), stream, out, storable, fmt, time_range, result)
            if feed is not None:
                iterators.append(_cut_at_damage(feed, source, stream, result))
        for packet in heapq.merge(*iterators, key=_packet_time):
            out.mux(packet)
        out.close()
    except OSError as exc:
        raise translate_write_error(exc, dest) from exc
    except av.error.FFmpegError as exc:
        raise OutputError(
            f"cannot write {one_line(str(dest))}: {ffmpeg_reason(exc)}", path=dest
        ) from exc
    finally:
        for c in inputs:
            c.close()
    return result


def _open_segment(path: Path) -> av.container.InputContainer:
    """A segment file of the work folder, or a refusal saying how to start over."""
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise UserInputError(
            f"the finished segment {one_line(str(path))} cannot be read ({ffmpeg_reason(exc)}); "
            "run without --resume to start over",
            path=path,
            option="--resume",
        ) from exc


def _cut_at_damage(
    packets: Iterator[av.Packet], source: Path, stream: av.stream.Stream, result: MuxResult
) -> Iterator[av.Packet]:
    """A stream's packets until the target stops being readable there (then the rest of
    that stream is left out, with a warning and a note in the result)."""
    try:
        yield from packets
    except av.error.FFmpegError as exc:
        note = (
            f"{stream.type} stream #{stream.index}: cut short, the target "
            f"{one_line(str(source))} cannot be read further ({ffmpeg_reason(exc)})"
        )
        result.dropped.append(note)
        _log.warning("%s", note)


def _plan_stream(
    source: str,
    stream: av.stream.Stream,
    out: av.container.OutputContainer,
    storable: set[str],
    fmt: str,
    time_range: TimeRange,
    result: MuxResult,
) -> Iterator[av.Packet] | None:
    """Add `stream`'s counterpart to `out`; return its packet feed (None: dropped)."""
    name = stream.codec_context.name if stream.codec_context else "unknown"
    if name in storable:
        target = out.add_stream_from_template(stream)
        if stream.type == "audio":
            result.audio.append(f"copied {name}")
        return _copied_packets(_demux_one(source, stream.index), target, time_range)
    if stream.type != "audio":
        note = f"{stream.type} stream #{stream.index} ({name}): {fmt} cannot store it"
        result.dropped.append(note)
        _log.warning("dropping %s", note)
        return None
    codec = "aac" if "aac" in storable else "libopus"
    audio = cast(av.AudioStream, stream)  # its type was checked above
    encoded = cast(av.AudioStream, out.add_stream(codec, rate=audio.codec_context.sample_rate))
    encoded.layout = audio.codec_context.layout
    result.audio.append(f"re-encoded {name} -> {codec}")
    return _reencoded_packets(source, stream.index, encoded, time_range)


def _demux_one(path: str, index: int) -> Iterator[av.Packet]:
    """Packets of one stream, read through a container of its own (independent cursor)."""
    with av.open(path) as c:
        yield from c.demux(c.streams[index])


def _video_packets(segments: list[Path], target: av.stream.Stream) -> Iterator[av.Packet]:
    for seg in segments:
        with _open_segment(seg) as c:
            try:
                for packet in c.demux(c.streams.video[0]):
                    if packet.size == 0:
                        continue
                    if packet.dts is None:
                        packet.dts = packet.pts  # Matroska segments: intra-only FFV1
                    packet.stream = cast(av.VideoStream, target)
                    yield packet
            except (av.error.FFmpegError, IndexError) as exc:
                raise UserInputError(
                    f"the finished segment {one_line(str(seg))} is damaged ({ffmpeg_reason(exc)}); "
                    "run without --resume to start over",
                    path=seg,
                    option="--resume",
                ) from exc


def _copied_packets(
    packets: Iterator[av.Packet], target: av.stream.Stream, time_range: TimeRange
) -> Iterator[av.Packet]:
    for packet in packets:
        if packet.size == 0 or packet.pts is None:
            continue
        tb = packet.time_base
        t = float(packet.pts * tb)
        if time_range.start_s > 0 and t + float((packet.duration or 0) * tb) <= time_range.start_s:
            continue  # wholly before the range (priming packets before 0 are kept)
        if time_range.end_s is not None and t >= time_range.end_s - 1e-6:
            break
        shift = round(Fraction(time_range.start_s) / tb)
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = target
        yield packet


def _reencoded_packets(
    path: str, index: int, target: av.AudioStream, time_range: TimeRange
) -> Iterator[av.Packet]:
    with av.open(path) as c:
        stream = c.streams[index]
        rate = target.codec_context.sample_rate
        for decoded in c.decode(stream):
            frame = cast(av.AudioFrame, decoded)  # an audio stream decodes to audio frames
            if frame.time is None or frame.time < time_range.start_s - 1e-6:
                continue
            if time_range.end_s is not None and frame.time >= time_range.end_s - 1e-6:
                break
            frame.pts = round((frame.time - time_range.start_s) * rate)
            frame.time_base = Fraction(1, rate)
            yield from target.encode(frame)
        yield from target.encode(None)


def _packet_time(packet: av.Packet) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base) if ts is not None else 0.0

"""What the GPU check takes to a GPU machine that has no network: its clip and trimmed wheels.

    python bench/gpu_carry.py clip OUT.mp4 [--source VIDEO] [--seconds 6]
    python bench/gpu_carry.py trim WHEEL... --out DIR
    python bench/gpu_carry.py sizes ROOT PATH...

`clip` copies the first seconds of `nggyup.mp4` (shared media) without re-encoding: every
packet before the first keyframe at or after `--seconds`, audio up to the same time, so
the clip's frames are the source's first frames bit for bit (checked after writing) and
the face recording `bench/data/nggyup_faces.npz` still matches them by index.

`trim` rewrites a wheel with only the files its import loads (`TrimRules`): no data
folders (PyNvVideoCodec's FFmpeg source tarball), no top-level folders outside the
package (its samples and benchmarks), no typing stubs or Cython sources, no `.py`
shadowed by an extension module beside it, one copy of each shared library (the name
other libraries ask for). Every library a kept binary needs must be kept or be a system
or driver library, else it fails. The result is LZMA-compressed (pip reads it) with a
new RECORD.

`sizes` prints what travels: the checkout's files that git does not ignore, plus the
named paths, in MiB, against the 64 MiB limit. Each command prints one line per file.
A missing input is an error with one line saying which and how to get it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MIB = 2**20
CARRY_LIMIT_MIB = 64
# Libraries a GPU machine's system or NVIDIA driver provides (never bundled).
SYSTEM_LIBRARIES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libdl.so.2",
        "libpthread.so.0",
        "librt.so.1",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libz.so.1",
        "ld-linux-x86-64.so.2",
        "libcuda.so.1",
    }
)


class CarryError(RuntimeError):
    """An input is missing or a trimmed wheel would not load; the message says which."""


# ---------------------------------------------------------------- the clip


def make_clip(source: Path, out: Path, seconds: float = 6.0) -> dict:
    """The first `seconds` of `source` (to the next keyframe), remuxed; see module doc."""
    import av
    import numpy as np

    if not source.exists():
        raise CarryError(
            f"the source video {source} is missing; the shared media (../shared/media, or "
            "GHOST_ENGINE_MEDIA) holds videos/nggyup.mp4"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with av.open(str(source)) as inp:
        video = inp.streams.video[0]
        cut = _cut_time(inp, video, seconds)
    with av.open(str(source)) as inp, av.open(str(tmp), "w", format="mp4") as dst:
        keep = [s for s in inp.streams if s.type in ("video", "audio")]
        outs = {s.index: dst.add_stream_from_template(s) for s in keep}
        video_index = inp.streams.video[0].index
        done_video = False
        for packet in inp.demux(keep):
            if packet.dts is None or packet.size == 0:
                continue  # the demuxer's flush packets
            t = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
            if packet.stream.index == video_index:
                if packet.is_keyframe and t >= cut - 1e-6:
                    done_video = True
                if done_video:
                    continue
            elif t >= cut - 1e-6:
                continue
            packet.stream = outs[packet.stream.index]
            dst.mux(packet)
    frames = _check_same_frames(source, tmp, np)
    tmp.replace(out)
    return {"path": str(out), "seconds": round(cut, 3), "frames": frames, "bytes": _size(out)}


def _cut_time(container, video, seconds: float) -> float:
    """The time of the first keyframe at or after `seconds` (the clip's end)."""
    for packet in container.demux(video):
        if packet.is_keyframe and packet.pts is not None:
            t = float(packet.pts * packet.time_base)
            if t >= seconds - 1e-6:
                return t
    raise CarryError(f"the source has no keyframe at or after {seconds} s; ask for fewer seconds")


def _check_same_frames(source: Path, clip: Path, np) -> int:
    import av

    with av.open(str(clip)) as a, av.open(str(source)) as b:
        ours = b.decode(video=0)
        count = 0
        for frame in a.decode(video=0):
            theirs = next(ours)
            if frame.pts != theirs.pts or not np.array_equal(
                frame.to_ndarray(format="yuv420p"), theirs.to_ndarray(format="yuv420p")
            ):
                raise CarryError(f"clip frame {count} differs from the source's; not a clean cut")
            count += 1
    if count == 0:
        raise CarryError(f"{clip} has no video frames")
    return count


# ---------------------------------------------------------------- ELF dependencies


def elf_dynamic(data: bytes) -> tuple[str | None, list[str]]:
    """(SONAME, NEEDED names) of a 64-bit little-endian ELF shared object."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]
    dynamic = next((s for s in sections if s[1] == 6), None)  # SHT_DYNAMIC
    if dynamic is None:
        return None, []
    strtab = sections[dynamic[6]]  # sh_link: the string table the entries point into
    strings = data[strtab[4] : strtab[4] + strtab[5]]

    def text(offset: int) -> str:
        return strings[offset : strings.index(b"\0", offset)].decode()

    soname, needed = None, []
    for i in range(dynamic[5] // 16):
        tag, value = struct.unpack_from("<qQ", data, dynamic[4] + 16 * i)
        if tag == 0:
            break
        if tag == 1:  # DT_NEEDED
            needed.append(text(value))
        elif tag == 14:  # DT_SONAME
            soname = text(value)
    return soname, needed


def _is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


# ---------------------------------------------------------------- trimming


@dataclass(frozen=True)
class TrimRules:
    """What `trim_wheel` drops (see module doc)."""

    drop_suffixes: tuple[str, ...] = (".pyi", ".pxd", ".pyx", ".ipynb")
    system_libraries: frozenset[str] = SYSTEM_LIBRARIES


@dataclass
class TrimReport:
    wheel: str
    bytes_before: int
    bytes_after: int
    files_before: int
    files_after: int
    dropped: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.wheel}: {self.bytes_before / MIB:.1f} MiB -> {self.bytes_after / MIB:.1f} "
            f"MiB ({self.files_before} -> {self.files_after} files)"
        )


def trim_wheel(src: Path, out_dir: Path, rules: TrimRules = TrimRules()) -> TrimReport:
    """`src` rewritten into `out_dir` (same file name) with what its import loads."""
    if not src.exists():
        raise CarryError(f"the wheel {src} is missing; bench/fetch_gpu_wheels.sh downloads it")
    with zipfile.ZipFile(src) as zin:
        infos = [i for i in zin.infolist() if not i.is_dir()]
        files = {i.filename: zin.read(i) for i in infos}
    dist_info = next(n.split("/")[0] for n in files if n.split("/")[0].endswith(".dist-info"))
    kept = _keep(files, dist_info, rules)
    _check_libraries({n: files[n] for n in kept}, rules)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / src.name
    record_name = f"{dist_info}/RECORD"
    rows = []
    by_name = {i.filename: i for i in infos}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_LZMA) as zout:
        for name in sorted(kept, key=lambda n: (n.startswith(dist_info), n)):
            if name == record_name:
                continue
            data = files[name]
            info = zipfile.ZipInfo(name, by_name[name].date_time)
            info.external_attr = by_name[name].external_attr  # keeps the executable bits
            info.compress_type = zipfile.ZIP_LZMA
            zout.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append(f"{name},sha256={digest.decode()},{len(data)}")
        rows.append(f"{record_name},,")
        zout.writestr(record_name, "\n".join(rows) + "\n", zipfile.ZIP_LZMA)
    out.write_bytes(buffer.getvalue())
    return TrimReport(
        src.name,
        _size(src),
        _size(out),
        len(files),
        len(kept),
        sorted(set(files) - kept),
    )


def _keep(files: dict[str, bytes], dist_info: str, rules: TrimRules) -> set[str]:
    # import packages (a folder with an __init__.py; PyNvVideoCodec's top_level.txt also
    # names its samples and benchmarks, which are not) and top-level modules
    packages = {n.split("/")[0] for n in files if n.count("/") == 1 and n.endswith("/__init__.py")}
    packages |= {n for n in files if "/" not in n and n.endswith((".py", ".so"))}
    elves = {n: elf_dynamic(d) for n, d in files.items() if _is_elf(d)}
    needed = {lib for _, libs in elves.values() for lib in libs}
    library_folders = {
        n.split("/")[0] for n, (soname, _) in elves.items() if (soname or "") in needed
    }
    keep = set()
    for name in files:
        top = name.split("/")[0]
        if top == dist_info:
            keep.add(name)
        elif (top in packages or top in library_folders) and not name.endswith(rules.drop_suffixes):
            keep.add(name)
    # a .py beside an extension module of the same name is never imported
    extensions = {_stem(n) for n in keep if n in elves}
    keep = {n for n in keep if not (n.endswith(".py") and _stem(n) in extensions)}
    # one copy of each library: the name the others ask for (its SONAME)
    by_content: dict[bytes, list[str]] = {}
    for name in keep:
        if name in elves:
            by_content.setdefault(hashlib.sha256(files[name]).digest(), []).append(name)
    for names in by_content.values():
        if len(names) < 2:
            continue
        wanted = [n for n in names if n.rsplit("/", 1)[-1] in needed]
        soname = elves[names[0]][0]
        wanted = wanted or [n for n in names if n.rsplit("/", 1)[-1] == soname] or names[:1]
        keep -= set(names) - set(wanted[:1])
    return keep


def _stem(name: str) -> str:
    """ "av/video/frame" for av/video/frame.abi3.so and av/video/frame.py."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{base.split('.')[0]}"


def _check_libraries(kept: dict[str, bytes], rules: TrimRules) -> None:
    """Every library a kept binary needs is kept or provided by the machine."""
    names = {n.rsplit("/", 1)[-1] for n in kept}
    for name, data in kept.items():
        if not _is_elf(data):
            continue
        _, needed = elf_dynamic(data)
        for lib in needed:
            if lib not in names and lib not in rules.system_libraries:
                raise CarryError(f"{name} needs {lib}, which the trimmed wheel would not have")


# ---------------------------------------------------------------- sizes


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def tree_bytes(root: Path, besides: tuple[Path, ...] | list[Path] = ()) -> int:
    """Bytes of the checkout's files that git does not ignore (what travels untold),
    outside the folders in `besides` (counted on their own)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    paths = [root / p.decode() for p in listed.split(b"\0") if p]
    paths = [p for p in paths if not any(p.is_relative_to(b) for b in besides)]
    return sum(p.stat().st_size for p in paths if p.is_file())


def sizes(root: Path, carried: list[Path]) -> list[str]:
    """One line per carried path, the tree, and the total against the limit."""
    lines, total = [], tree_bytes(root, carried)
    lines.append(f"checkout (files git does not ignore): {total / MIB:.1f} MiB")
    for path in carried:
        if not path.exists():
            raise CarryError(f"{path} is missing; bash bench/fetch_gpu_wheels.sh makes it")
        for f in sorted(path.iterdir()) if path.is_dir() else [path]:
            lines.append(
                f"  {f.relative_to(root) if f.is_relative_to(root) else f}: "
                f"{_size(f) / MIB:.1f} MiB"
            )
        total += _size(path)
    lines.append(f"carried in all: {total / MIB:.1f} MiB of {CARRY_LIMIT_MIB} MiB")
    if total > CARRY_LIMIT_MIB * MIB:
        raise CarryError("\n".join(lines) + f"\nmore than {CARRY_LIMIT_MIB} MiB would travel")
    return lines


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("clip", help="the check's clip")
    c.add_argument("out", type=Path)
    c.add_argument("--source", type=Path, default=None, help="default: shared nggyup.mp4")
    c.add_argument("--seconds", type=float, default=6.0)
    t = sub.add_parser("trim", help="trimmed wheels")
    t.add_argument("wheels", type=Path, nargs="+")
    t.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("sizes", help="what travels")
    s.add_argument("root", type=Path)
    s.add_argument("paths", type=Path, nargs="*")
    args = p.parse_args(argv)
    try:
        if args.command == "clip":
            source = args.source
            if source is None:
                from ghost_engine.shared_paths import media_dir

                source = media_dir() / "videos" / "nggyup.mp4"
            made = make_clip(source, args.out, args.seconds)
            print(
                f"clip {made['path']}: {made['frames']} frames, {made['seconds']} s, "
                f"{made['bytes'] / MIB:.1f} MiB (first frames of {source.name}, not re-encoded)"
            )
        elif args.command == "trim":
            total = 0
            for wheel in args.wheels:
                report = trim_wheel(wheel, args.out)
                total += report.bytes_after
                print(report.line())
            print(f"trimmed wheels together: {total / MIB:.1f} MiB")
        else:
            root = args.root.resolve()
            print("\n".join(sizes(root, [x.resolve() for x in args.paths])))
    except CarryError as exc:
        print(f"gpu_carry.py {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

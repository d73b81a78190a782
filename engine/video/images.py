"""Still images in and out: RGB `Frame`s, labelled and written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ghost_engine.errors import OutputError, UnsupportedMediaError, one_line
from ghost_engine.types import Frame
from ghost_engine.video.label import label_jpeg, label_png
from ghost_engine.video.media import check_readable
from ghost_engine.video.output import commit, discard, temp_path_for, translate_write_error

IMAGE_OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_image(path: Path, what: str = "image") -> Frame:
    """Decode an image file (EXIF orientation applied) as an RGB frame."""
    path = check_readable(path, what)
    raw = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if bgr is None:
        raise UnsupportedMediaError(
            f"{what} {one_line(str(path))} is not an image OpenCV can decode", path=path
        )
    return Frame(index=0, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def check_image_output(path: Path) -> None:
    """Image outputs are PNG or JPEG (the two formats we can label)."""
    if Path(path).suffix.lower() not in IMAGE_OUTPUT_SUFFIXES:
        raise OutputError(
            f"an image target needs a .png or .jpg output, got '{one_line(Path(path).name)}'",
            path=path,
        )


def write_image(
    path: Path,
    image: np.ndarray,
    *,
    jpeg_quality: int = 95,
    replace: bool = True,
    seal: Callable[[bytes], bytes] | None = None,
) -> None:
    """Encode RGB `image`, label it synthetic and move it onto `path` atomically
    (`replace=False`: never over a file that is there, see `output.commit`). `seal`
    turns the labelled bytes into the bytes written (the image job embeds its C2PA
    manifest there), so the file appears at `path` already signed."""
    path = Path(path)
    check_image_output(path)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if path.suffix.lower() == ".png":
        ok, buf = cv2.imencode(".png", bgr)
        data = label_png(buf.tobytes()) if ok else b""
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        data = label_jpeg(buf.tobytes()) if ok else b""
    if not ok:
        raise OutputError(f"OpenCV could not encode an image of shape {image.shape}", path=path)
    if seal is not None:
        data = seal(data)
    temp = temp_path_for(path)
    try:
        temp.write_bytes(data)
        commit(temp, path, replace=replace)
    except OutputError:
        discard(temp)
        raise
    except OSError as exc:
        discard(temp)
        raise translate_write_error(exc, path) from exc
    except BaseException:
        discard(temp)
        raise

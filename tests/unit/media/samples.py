"""Small media files made in memory, for the media tests."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import av
import numpy as np
from PIL import Image

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def image_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def solid(color=RED, size=(64, 48), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def noisy_jpeg(size=(256, 192)) -> bytes:
    """A JPEG whose scan data fills most of the file, so cutting it truncates pixels."""
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return image_bytes(Image.fromarray(pixels), "JPEG", quality=95)


def left_red_right_blue(size=(60, 40)) -> Image.Image:
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image


def exif_rotated_jpeg() -> bytes:
    """Stored 60×40 (red left, blue right) with EXIF orientation 6: shown rotated 90° clockwise,
    40×60 with red on top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return image_bytes(left_red_right_blue(), "JPEG", exif=exif, quality=95)


def animated_gif() -> bytes:
    frames = [solid(RED).convert("P"), solid(BLUE).convert("P")]
    return image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height 1-bit pixels, with one tiny IDAT: a bomb's header
    at no cost to build."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def synthetic_video(frames: int = 10, fps: int = 5, size=(64, 48), codec: str = "mpeg4", fmt: str = "mp4") -> bytes:
    """A video whose frame i is filled with gray level 20*i (so a sampled frame tells its index)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            pixels = np.full((size[1], size[0], 3), min(20 * index, 255), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def counting_video(frames: int, fps: int, keyframe_every: int) -> bytes:
    """128×96 frames showing their own index in binary (9 black or white bars), with a keyframe
    every ``keyframe_every`` frames: no two frames look alike, so finding the wrong one shows."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.codec_context.gop_size = keyframe_every
        for index in range(frames):
            pixels = np.zeros((96, 128, 3), dtype=np.uint8)
            for bit in range(9):
                if index >> bit & 1:
                    pixels[:, bit * 14 : bit * 14 + 12] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def sideways_phone_video() -> bytes:
    """Frames stored 64×48 (red left, blue right) in an MP4 whose track matrix says "turn 90°
    clockwise to show", as phones record portrait video: shown 48×64 with red on top."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        pixels = np.asarray(left_red_right_blue((64, 48)))
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(buffer.getvalue())
    # tkhd (version 0): 4 type, 4 version/flags, 20 times, id and duration, 8 reserved, 8 layer to volume.
    matrix = data.index(b"tkhd") + 44
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 48 << 16, 0, 0x40000000)
    return bytes(data)


def audio_only_mp4(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    rate = 44100
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = int(rate * seconds)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()

"""Synthetic audio and video files for the media and model tests (generated, never downloaded)."""

from __future__ import annotations

import numpy as np


def tone(duration, sr=16000, freq=440.0, amp=0.3, channels=1):
    """A float32 sine tone ``(n,)``, or ``(n, channels)`` with one frequency per channel."""
    t = np.arange(int(round(duration * sr))) / sr
    cols = [amp * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    out = np.stack(cols, axis=1) if channels > 1 else cols[0]
    return out.astype(np.float32)


def chirp(duration, sr=16000, f0=200.0, f1=3000.0, amp=0.4):
    """A linear chirp from ``f0`` to ``f1`` Hz, float32."""
    t = np.arange(int(round(duration * sr))) / sr
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / duration * t**2)
    return (amp * np.sin(phase)).astype(np.float32)


def write_audio(path, data, sr=16000, **kwargs):
    import soundfile as sf

    sf.write(str(path), data, sr, **kwargs)
    return str(path)


def frame_image(t, height=32, width=32):
    """Frame ``t`` of a synthetic video.

    Its index in binary as 8 black/white blocks across the top half (readable after lossy coding,
    see :func:`frame_index`), a bottom half whose red channel grows with ``t`` and a horizontal blue
    gradient, so frames differ in space and time."""
    img = np.zeros((height, width, 3), np.uint8)
    block = width // 8
    for bit in range(8):
        if (int(t) >> bit) & 1:
            img[: height // 2, bit * block : (bit + 1) * block] = 255
    img[height // 2 :, :, 0] = (10 * t) % 250
    img[height // 2 :, :, 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return img


def frame_index(frames):
    """Frame indices written by :func:`frame_image`, from frames ``(..., H, W, 3)``."""
    frames = np.asarray(frames, dtype=float)
    height, width = frames.shape[-3:-1]
    block = width // 8
    top = frames[..., 2 : height // 2 - 2, :, :].mean(axis=(-3, -1))  # (..., W)
    bits = [top[..., b * block + 1 : (b + 1) * block - 1].mean(-1) > 128 for b in range(8)]
    return sum(bit.astype(int) << k for k, bit in enumerate(bits))


def write_video(path, n_frames, fps=10, height=32, width=32, codec="mpeg4", frames=None):
    """Encode ``n_frames`` frames (default :func:`frame_image`) with PyAV; returns the path."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(n_frames):
            img = frame_image(t, height, width) if frames is None else frames[t]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)

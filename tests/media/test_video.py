"""Video decoding with PyAV and clip sampling."""

import itertools

import numpy as np
import pytest

from neuroprobe.media import load
from neuroprobe.media.video import clip_indices, clip_onsets, load_video, sample_clips, video_info
from neuroprobe.stimuli import StimulusError, StimulusSet
from tests.media._synth import frame_image, frame_index, tone, write_audio, write_video


@pytest.mark.parametrize("codec", ["mpeg4", "libx264"])
def test_decode_frames_in_order(tmp_path, codec):
    path = write_video(tmp_path / "v.mp4", 12, fps=10, codec=codec)
    frames, fps = load_video(path)
    assert frames.dtype == np.uint8 and frames.shape == (12, 32, 32, 3)
    assert fps == pytest.approx(10.0)
    np.testing.assert_array_equal(frame_index(frames), np.arange(12))
    # lossy coding keeps the picture close to the encoded one
    ref = np.stack([frame_image(t) for t in range(12)]).astype(float)
    assert np.abs(frames.astype(float) - ref).mean() < 12


def test_time_window_and_max_frames(tmp_path):
    path = write_video(tmp_path / "v.mp4", 20, fps=10)
    frames, _ = load_video(path, start_s=0.5, end_s=1.2)
    np.testing.assert_array_equal(frame_index(frames), np.arange(5, 12))
    frames, _ = load_video(path, max_frames=4)
    np.testing.assert_array_equal(frame_index(frames), np.arange(4))
    info = video_info(path)
    assert info["fps"] == pytest.approx(10.0) and info["n_frames"] == 20
    assert (info["width"], info["height"]) == (32, 32)


def test_media_load_and_stimulus_set(tmp_path):
    paths = [write_video(tmp_path / f"v{k}.mp4", 4 + k) for k in range(2)]
    stims = StimulusSet.from_paths(paths)
    assert stims.modality == "video"
    frames, fps = stims.load(1)
    assert frames.shape == (5, 32, 32, 3) and fps == pytest.approx(10.0)
    frames2, _ = load(paths[1], "video")
    np.testing.assert_array_equal(frames, frames2)


def test_mixed_sets_rejected(tmp_path):
    video = write_video(tmp_path / "v.mp4", 3)
    wav = write_audio(tmp_path / "a.wav", tone(0.2))
    with pytest.raises(StimulusError, match="(?i)modalit|mix"):
        StimulusSet.from_paths([video, wav])


def _reference_indices(n_total, n_frames, stride, start, mode, step):
    """Brute-force reference of the documented clip sampling."""
    span = (n_frames - 1) * stride + 1
    avail = n_total - start
    last = n_total - 1
    if mode == "uniform":
        return [
            [
                min(last, start + int(np.floor(k * (avail - 1) / max(n_frames - 1, 1) + 0.5)))
                for k in range(n_frames)
            ]
        ]
    if avail < span:
        starts = [start]
    elif mode == "centre":
        starts = [start + (avail - span) // 2]
    elif mode == "start":
        starts = [start]
    else:
        step = step or span
        starts = list(range(start, n_total - span + 1, step))
    return [[min(last, s + k * stride) for k in range(n_frames)] for s in starts]


@pytest.mark.parametrize(
    "n_total, n_frames, stride, start, mode, step",
    [
        (n, f, s, st, m, sp)
        for n, f, s, st, m, sp in itertools.product(
            [5, 16, 37],
            [1, 4],
            [1, 3],
            [0, 2],
            ["centre", "start", "uniform", "sliding"],
            [None, 2],
        )
        if st < n and not (m != "sliding" and sp is not None)
    ],
)
def test_clip_indices_match_reference(n_total, n_frames, stride, start, mode, step):
    got = clip_indices(n_total, n_frames, stride, start=start, mode=mode, step=step)
    np.testing.assert_array_equal(
        got, _reference_indices(n_total, n_frames, stride, start, mode, step)
    )


def test_sliding_clip_count_and_onsets():
    idx = clip_indices(100, 8, 2, mode="sliding", step=10)
    span = 7 * 2 + 1
    assert len(idx) == 1 + (100 - span) // 10
    np.testing.assert_allclose(clip_onsets(idx, 25.0), np.arange(len(idx)) * 10 / 25.0)


def test_short_video_policy(tmp_path):
    frames = np.arange(3)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    clip = sample_clips(frames, 5, 1, short_policy="pad")
    np.testing.assert_array_equal(clip[0, :, 0, 0, 0], [0, 1, 2, 2, 2])  # last frame repeated
    with pytest.raises(StimulusError, match="short_policy='error'") as err:
        clip_indices(3, 5, 1, short_policy="error", name="clip.mp4")
    assert "clip.mp4" in str(err.value)
    assert len(clip_indices(3, 5, 1, mode="sliding")) == 1


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.mp4", b"", "empty"),
        ("corrupt.mp4", b"\x00\x01garbage" * 300, "open|decode|frame"),
        ("missing.mp4", None, "not found"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StimulusError, match=match) as err:
        load_video(path)
    assert str(path) in str(err.value)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(0.2))
    with pytest.raises(StimulusError, match="no video stream") as err:
        load_video(path)
    assert path in str(err.value)


def test_truncated_file_keeps_decodable_frames_or_names_the_file(tmp_path):
    path = write_video(tmp_path / "v.mp4", 30, codec="mpeg4")
    data = open(path, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov atom at the end is lost: unreadable
    with pytest.raises(StimulusError) as err:
        load_video(cut)
    assert str(cut) in str(err.value)

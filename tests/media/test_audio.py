"""Audio decoding: formats, mono mixdown, resampling, bad files, StimulusSet integration."""

import os
import shutil

import numpy as np
import pytest

from neuroprobe.media import load
from neuroprobe.media.audio import load_audio
from neuroprobe.stimuli import StimulusError, StimulusSet
from tests.media._synth import tone, write_audio, write_video

SR = 22050


@pytest.fixture(scope="module")
def stereo():
    return tone(0.5, sr=SR, freq=330.0, channels=2)


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_lossless_formats_decode_to_mono_mean(tmp_path, stereo, ext):
    path = write_audio(tmp_path / f"a.{ext}", stereo, SR)
    wave, sr = load_audio(path)
    assert sr == SR and wave.dtype == np.float32 and wave.ndim == 1
    # 16-bit PCM: each channel is quantised to 1/32768, the mean of two to within that step
    np.testing.assert_allclose(wave, stereo.mean(axis=1), atol=1.5 / 32768)
    both, _ = load_audio(path, mono=False)
    assert both.shape == stereo.shape


@pytest.mark.parametrize("ext", ["ogg", "mp3"])
def test_lossy_formats_match_the_signal(tmp_path, stereo, ext):
    path = write_audio(
        tmp_path / f"a.{ext}", stereo, SR
    )  # mp3 is decoded by PyAV, ogg by soundfile
    wave, sr = load_audio(path)
    ref = stereo.mean(axis=1)
    assert sr == SR and wave.ndim == 1
    assert abs(len(wave) - len(ref)) < 0.05 * SR  # codec padding at most a few frames
    n = min(len(wave), len(ref))
    # best alignment (codec delay) then correlation
    lags = range(-2000, 2001, 1)
    best = max(
        np.corrcoef(wave[max(0, k) : n + min(0, k)], ref[max(0, -k) : n - max(0, k)])[0, 1]
        for k in lags[::50]
    )
    assert best > 0.95


def test_av_decoder_handles_formats_by_content(tmp_path):
    # an m4a/aac file (not readable by libsndfile) goes through PyAV
    import av

    path = tmp_path / "a.m4a"
    signal = tone(0.5, sr=SR, freq=440.0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=SR)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(signal[None, :], format="fltp", layout="mono")
        frame.sample_rate = SR
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    wave, sr = load_audio(path)
    assert sr == SR
    spectrum = np.abs(np.fft.rfft(wave))
    peak = np.fft.rfftfreq(len(wave), 1 / SR)[spectrum.argmax()]
    assert abs(peak - 440.0) < 5.0


def test_resampling_keeps_the_tone(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(1.0, sr=SR, freq=440.0), SR)
    wave, sr = load_audio(path, sample_rate=16000)
    assert sr == 16000
    assert abs(len(wave) - 16000) <= 1
    # independent reference: the analytic tone sampled at 16 kHz (away from the edges)
    ref = tone(1.0, sr=16000, freq=440.0)
    np.testing.assert_allclose(wave[200:-200], ref[200:-200], atol=2e-3)


def test_media_load_and_stimulus_set(tmp_path):
    paths = [write_audio(tmp_path / f"s{k}.wav", tone(0.3, freq=200 * (k + 1))) for k in range(2)]
    stims = StimulusSet.from_paths(paths)
    assert stims.modality == "audio"
    wave, sr = stims.load(1)
    np.testing.assert_allclose(wave, tone(0.3, freq=400), atol=1.0 / 32768)
    wave2, sr2 = load(paths[1], "audio")
    np.testing.assert_array_equal(wave, wave2)
    assert sr == sr2 == 16000


def test_stimulus_set_modality_from_csv_and_mixed_sets(tmp_path):
    wav = write_audio(tmp_path / "a.wav", tone(0.3))
    mp4 = write_video(tmp_path / "v.mp4", 3)
    with pytest.raises(StimulusError, match="(?i)modalit|mix"):
        StimulusSet.from_paths([wav, mp4])
    csv = tmp_path / "stims.csv"
    csv.write_text(f"stim_id,path,onset\na,{wav},0.0\n")
    stims = StimulusSet.from_csv(csv)
    assert stims.modality == "audio"
    np.testing.assert_array_equal(stims.column("onset"), [0.0])


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.wav", b"", "empty"),
        ("corrupt.wav", os.urandom(2000), "decode"),
        ("corrupt.mp3", b"\x00" * 64 + os.urandom(2000), "open|decode|zero"),
        ("missing.flac", None, "not found"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StimulusError, match=match) as err:
        load_audio(path)
    assert str(path) in str(err.value)


def test_zero_length_audio_and_no_audio_stream(tmp_path):
    path = write_audio(tmp_path / "zero.wav", np.zeros(0, np.float32))
    with pytest.raises(StimulusError, match="zero length") as err:
        load_audio(path)
    assert str(path) in str(err.value)
    video = str(tmp_path / "silent.m4a")  # a video-only mp4 with an audio extension
    shutil.copy(write_video(tmp_path / "v.mp4", 3), video)
    with pytest.raises(StimulusError, match="no audio stream") as err:
        load_audio(video)
    assert video in str(err.value)

"""Audio and video extraction throughput on CPU: decoding overlapped with compute vs serial.

Synthetic stimuli (sine/chirp wav files; mpeg4 mp4 files) are written to a temporary folder. For
each modality the same :class:`~neuroprobe.transformers.DNNFeatureExtractor` (random weights, fixed
seed) runs over the stimuli

* **serial** (the reference, as DNNBrain does: decode a batch, then run the network), with the
  extractor's ``DECODE_WORKERS = 0``;
* **overlapped**: background threads decode and preprocess the next batches while the network runs
  (``DECODE_WORKERS = 2``, the default).

Decode+preprocess alone and compute alone are timed too, so the ideal overlapped time
``max(decode, compute)`` can be compared with the measured one. Models: VGGish (0.96 s examples) and
torchvision ``r3d_18`` (16-frame 112x112 clips). Writes the ``media`` section of RESULTS.md.

Usage: ``python benchmarks/bench_media.py [--quick]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _results import machine, peak_rss_mb, write_section  # noqa: E402


def _write_audio(folder, n, seconds):
    import soundfile as sf

    sr = 22050  # resampled to 16 kHz by the preprocessing, as real recordings usually are
    t = np.arange(int(seconds * sr)) / sr
    paths = []
    for k in range(n):
        f0 = 200.0 + 50 * k
        x = 0.3 * np.sin(2 * np.pi * (f0 * t + 400.0 * t**2 / seconds))
        path = folder / f"a{k:03d}.wav"
        sf.write(path, np.stack([x, 0.5 * x], 1), sr)  # stereo: mixed down
        paths.append(str(path))
    return paths


def _write_video(folder, n, n_frames, size):
    import av

    paths = []
    rng = np.random.RandomState(0)
    for k in range(n):
        path = folder / f"v{k:03d}.mp4"
        with av.open(str(path), "w") as c:
            s = c.add_stream("mpeg4", rate=30)
            s.width, s.height, s.pix_fmt = size[1], size[0], "yuv420p"
            base = rng.randint(0, 255, (size[0], size[1], 3)).astype(np.uint8)
            for t in range(n_frames):
                img = np.roll(base, 2 * t, axis=1)
                for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        paths.append(str(path))
    return paths


def _time(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _bench(model, paths, batch_size, repeat, n_clips_of):
    import torch

    import neuroprobe.transformers.extraction as ext_mod
    from neuroprobe.stimuli import StimulusSet
    from neuroprobe.transformers.extraction import DNNFeatureExtractor

    stims = StimulusSet.from_paths(paths)
    ext = DNNFeatureExtractor(
        model, weights=None, layers=None, pooling="mean", random_state=0, batch_size=batch_size
    )
    ext.fit(stims[:1])
    spec = ext.model_
    n_clips = sum(n_clips_of(spec, stims, i) for i in range(len(stims)))

    def decode():
        return [spec.preprocess(stims.load(i)) for i in range(len(stims))]

    inputs = decode()

    def compute():
        with torch.no_grad():
            for s in range(0, len(inputs), batch_size):
                spec.module(torch.stack(inputs[s : s + batch_size]))

    def run(workers):
        def go():
            old = ext_mod.DECODE_WORKERS
            ext_mod.DECODE_WORKERS = workers
            try:
                return ext.transform(stims)
            finally:
                ext_mod.DECODE_WORKERS = old

        return go

    compute()  # warm-up: first-call allocations of the convolution primitives
    a, b = run(0)(), run(2)()
    t_decode = _time(decode, repeat)
    t_compute = _time(compute, repeat)
    t_serial, t_overlap = np.inf, np.inf
    for _ in range(repeat):  # interleaved, so that load changes hit both alike
        t_serial = min(t_serial, _time(run(0), 1))
        t_overlap = min(t_overlap, _time(run(2), 1))
    assert np.allclose(a, b, rtol=1e-5, atol=1e-6), "overlapped and serial features differ"
    return {
        "stimuli": len(stims),
        "clips": n_clips,
        "decode": t_decode,
        "compute": t_compute,
        "serial": t_serial,
        "overlap": t_overlap,
    }


def _audio_clips(spec, stims, i):
    return int(spec.preprocess(stims.load(i)).shape[1])  # VGGish examples


def _video_clips(spec, stims, i):
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: tiny sizes")
    args = parser.parse_args(argv)
    if args.quick:
        n_audio, seconds, n_video, n_frames, size, repeat = 4, 1.0, 4, 12, (64, 80), 1
        clip = {"n_frames": 4, "resize_size": (64, 80), "crop_size": 56}
    else:
        n_audio, seconds, n_video, n_frames, size, repeat = 24, 4.0, 12, 60, (240, 320), 3
        clip = {}
    import torch

    from neuroprobe.models.video import video_model

    r3d = functools.partial(video_model, "r3d_18", **clip)
    clip_text = (
        f"{clip['n_frames']}-frame {clip['crop_size']}x{clip['crop_size']}"
        if clip
        else "16-frame 112x112"
    )

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        audio = _write_audio(tmp, n_audio, seconds)
        video = _write_video(tmp, n_video, n_frames, size)
        rows["audio: VGGish"] = _bench("vggish", audio, 8, repeat, _audio_clips)
        rows["video: r3d_18"] = _bench(r3d, video, 4, repeat, _video_clips)

    lines = [
        f"Machine: {machine()}; torch threads: {torch.get_num_threads()}. The machine is shared "
        "with other jobs, so absolute times are noisy; the ratios come from the same run.",
        "",
        f"Command: `python benchmarks/bench_media.py{' --quick' if args.quick else ''}` "
        f"(best of {repeat}). Audio: {n_audio} stereo 22.05 kHz wav files of {seconds:g} s "
        f"(resampled to 16 kHz, 0.96 s VGGish examples = clips). Video: {n_video} mpeg4 mp4 files "
        f"of {n_frames} frames {size[1]}x{size[0]} at 30 fps, one {clip_text} clip each "
        "(r3d_18). Random weights, pooling='mean' on the last layer.",
        "",
        "| workload | stimuli | clips | decode+preprocess (s) | compute (s) | serial (s) | "
        "overlapped (s) | serial / overlapped | clips/s serial | clips/s overlapped |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['stimuli']} | {r['clips']} | {r['decode']:.2f} | {r['compute']:.2f} | "
            f"{r['serial']:.2f} | {r['overlap']:.2f} | {r['serial'] / r['overlap']:.2f}x | "
            f"{r['clips'] / r['serial']:.1f} | {r['clips'] / r['overlap']:.1f} |"
        )
    lines += [
        "",
        "Overlapped = `DNNFeatureExtractor` default (2 decode threads prefetching 2 batches); "
        "serial = `DECODE_WORKERS = 0` (decode, then compute, as DNNBrain). Both give the same "
        "features. The best possible overlapped time is max(decode, compute); on 2 shared cores "
        "decode threads and torch's threads compete for the same CPUs. Serial and overlapped runs "
        "are interleaved (best of each), so their ratio is the robust figure; decode and compute "
        "alone are timed apart and feel load changes of the shared machine (an overlapped time "
        f"below compute alone means the load dropped). Peak RSS {peak_rss_mb():.0f} MiB.",
    ]
    text = "\n".join(lines)
    print(text)
    write_section("media", text)


if __name__ == "__main__":
    main()

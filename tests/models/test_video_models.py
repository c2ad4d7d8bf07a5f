"""Video networks (torchvision and PyTorchVideo) through the same DNNFeatureExtractor as images."""

import numpy as np
import pytest
import torch

from neuroprobe.models import build_model, list_layers
from neuroprobe.models.hooks import capture
from neuroprobe.models.registry import ModelError, WeightsUnavailableError
from neuroprobe.models.video import VideoPreprocess, video_model
from neuroprobe.stimuli import StimulusSet
from neuroprobe.transformers.extraction import DNNFeatureExtractor
from neuroprobe.transformers.timeseries import extract_time_series
from tests.media._synth import frame_index, write_video

TINY = dict(n_frames=4, resize_size=(36, 40), crop_size=32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny inputs: one intra-op thread avoids oversubscribing a shared machine (restored)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return [
        write_video(folder / "a.mp4", 12, fps=10),
        write_video(folder / "b.mp4", 20, fps=20, codec="libx264"),
        write_video(folder / "c.mp4", 3, fps=10),  # shorter than one clip: padded
    ]


@pytest.fixture(scope="module")
def r3d():
    return video_model("r3d_18", None, random_state=0, **TINY)


def _factory(**kwargs):
    def factory(weights=None, random_state=None):
        return video_model("r3d_18", weights, random_state, **{**TINY, **kwargs})

    return factory


def test_clip_sampling_follows_the_target_frame_rate(videos):
    pre = VideoPreprocess(n_frames=4, target_fps=10.0, resize_size=32, crop_size=32)
    frames, fps = StimulusSet.from_paths(videos).load(1)  # 20 fps, 20 frames
    assert pre.stride_for(fps) == 2
    idx = pre.indices(len(frames), fps)[0]
    np.testing.assert_array_equal(idx, [6, 8, 10, 12])  # centred span of 7 frames in 20
    np.testing.assert_array_equal(frame_index(frames[idx]), idx)


def test_torchvision_preprocessing_is_the_weights_transform(videos):
    # published 128x171 resize, 112 crop
    spec = video_model("r3d_18", weights=None, random_state=0, n_frames=4)
    frames, fps = StimulusSet.from_paths(videos).load(0)
    x = spec.preprocess((frames, fps))
    assert x.shape == (3, 4, 112, 112)
    from torchvision.models.video import R3D_18_Weights

    idx = spec.preprocess.indices(len(frames), fps)[0]
    clip = torch.from_numpy(frames[idx]).permute(0, 3, 1, 2)  # (T, C, H, W) uint8
    ref = R3D_18_Weights.KINETICS400_V1.transforms()(clip)
    torch.testing.assert_close(x, ref)


def test_pytorchvideo_preprocessing_matches_the_recipe():
    pre = VideoPreprocess(
        n_frames=2,
        resize_size=20,
        crop_size=16,
        mean=(0.45,) * 3,
        std=(0.225,) * 3,
        recipe="pytorchvideo",
    )
    frames = np.random.RandomState(0).randint(0, 256, (2, 30, 40, 3)).astype(np.uint8)
    got = pre.transform(frames)
    # reference: /255, normalise, short side to 20 (30x40 -> 20x26), bilinear, centre crop 16
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).double() / 255.0
    x = (x - 0.45) / 0.225
    x = torch.nn.functional.interpolate(x, size=(20, 26), mode="bilinear", align_corners=False)
    x = x[:, :, 2:18, 5:21].permute(1, 0, 2, 3)
    torch.testing.assert_close(got, x.float(), atol=1e-5, rtol=1e-5)


def test_extractor_equals_direct_forward_and_batch_invariance(videos, r3d):
    stims = StimulusSet.from_paths(videos)
    layers = ["layer1", "layer4.1.conv2"]
    small = DNNFeatureExtractor(_factory(), None, layers=layers, random_state=0, batch_size=1)
    big = DNNFeatureExtractor(_factory(), None, layers=layers, random_state=0, batch_size=3)
    f1, f3 = small.fit_transform(stims), big.fit_transform(stims)
    assert np.isfinite(f1).all()
    np.testing.assert_allclose(f1, f3, rtol=1e-4, atol=1e-5)  # conv algorithms vary with batch
    assert small.layer_shapes_["layer1"] == (64, 4, 16, 16)
    names = small.get_feature_names_out()
    assert names[0] == "layer1:c0:t0:y0:x0" and len(names) == f1.shape[1]
    for i in range(3):
        x = r3d.preprocess(stims.load(i))[None]
        with torch.no_grad(), capture(r3d.module, layers) as out:
            r3d.module(x)
        direct = np.concatenate([out[m][0].numpy().ravel() for m in layers])
        np.testing.assert_allclose(f1[i], direct, rtol=1e-5, atol=1e-6)


def test_pooling_over_time_and_space(videos):
    stims = StimulusSet.from_paths(videos[:2])
    full = DNNFeatureExtractor(_factory(), None, layers="layer2", random_state=0).fit_transform(
        stims
    )
    pooled = DNNFeatureExtractor(
        _factory(), None, layers="layer2", pooling="mean", random_state=0
    ).fit_transform(stims)
    n_chan = pooled.shape[1]
    np.testing.assert_allclose(pooled, full.reshape(2, n_chan, -1).mean(-1), rtol=1e-5, atol=1e-6)


def test_short_policy_error_names_the_file(videos):
    stims = StimulusSet.from_paths(videos[2:])
    ext = DNNFeatureExtractor(
        _factory(short_policy="error", stride=2), None, layers="layer1", random_state=0
    )
    with pytest.raises(ValueError, match="short_policy='error'") as err:
        ext.fit_transform(stims)
    assert videos[2] in str(err.value)


def test_sliding_clip_time_series(videos):
    stims = StimulusSet.from_paths(videos[:2])
    ext = DNNFeatureExtractor(
        _factory(stride=1, step=4), None, layers="layer4", pooling="mean", random_state=0
    )
    ts = extract_time_series(ext, stims)
    # 12 frames, span 4, step 4 -> 3 clips at 10 fps; 20 frames -> 5 clips at 20 fps
    assert list(ts.stim_ids) == ["a"] * 3 + ["b"] * 5
    np.testing.assert_allclose(ts.onsets, [0.0, 0.4, 0.8, 0.0, 0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(ts.durations, [0.4] * 3 + [0.2] * 5)
    spec = video_model("r3d_18", None, random_state=0, **{**TINY, "stride": 1})
    frames, fps = stims.load(1)
    x = spec.preprocess.transform(frames[8:12])[None]  # the third clip of b
    with torch.no_grad(), capture(spec.module, ["layer4"]) as out:
        spec.module(x)
    np.testing.assert_allclose(
        ts.features[5], out["layer4"][0].mean((1, 2, 3)).numpy(), rtol=1e-5, atol=1e-6
    )


def test_x3d_xs_by_name():
    spec = build_model("x3d_xs", weights=None, random_state=0)
    assert spec.modality == "video" and spec.preprocess_info["input_shape"] == [3, 4, 182, 182]
    frames = np.random.RandomState(0).randint(0, 256, (30, 60, 80, 3)).astype(np.uint8)
    ext = DNNFeatureExtractor(
        "x3d_xs", weights=None, layers=["blocks.1"], pooling="mean", random_state=0
    )
    feats = ext.fit_transform(torch.stack([spec.preprocess((frames, 30.0))]))
    assert feats.shape == (1, ext.layer_shapes_["blocks.1"][0]) and np.isfinite(feats).all()
    x = spec.preprocess((frames, 30.0))[None]
    with torch.no_grad(), capture(spec.module, ["blocks.1"]) as out:
        spec.module(x)
    np.testing.assert_allclose(
        feats[0], out["blocks.1"][0].mean((1, 2, 3)).numpy(), rtol=1e-5, atol=1e-6
    )


def test_slowfast_builds_its_slow_pathway():
    kwargs = {"head_pool_kernel_sizes": ((2, 2, 2), (8, 2, 2))}
    spec = video_model(
        "slowfast_r50", weights=None,
        random_state=0,
        n_frames=8,
        resize_size=64,
        crop_size=64,
        model_kwargs=kwargs,
    )
    frames = np.random.RandomState(1).randint(0, 256, (16, 64, 64, 3)).astype(np.uint8)
    fast = spec.preprocess((frames, 30.0))[None]  # (1, 3, 8, 64, 64)
    slow = fast[:, :, [0, 7]]  # PackPathway: linspace(0, T - 1, T // alpha) = linspace(0, 7, 2)
    with torch.no_grad():
        ours = spec.module(fast)
        ref = spec.module([slow, fast])
    torch.testing.assert_close(ours, ref)
    assert ours.shape == (1, 400)


def test_registry_and_list_layers():
    layers = dict(list_layers(_factory(), input_shape=(3, 4, 32, 32)))
    assert layers["layer1"] == (64, 4, 16, 16) and layers["fc"] == (400,)  # stem stride (1, 2, 2)
    with pytest.raises(ModelError, match="unknown video model"):
        video_model("r4d_18", weights=None)


def test_offline_pretrained_weights_error(monkeypatch):
    import torchvision.models as tvm

    def offline(name, weights=None, **kwargs):
        if weights is not None:
            raise OSError("network is unreachable")
        return real(name, weights=None, **kwargs)

    real = tvm.get_model
    monkeypatch.setattr(tvm, "get_model", offline)
    with pytest.raises(WeightsUnavailableError, match="r3d_18.*weights="):
        video_model("r3d_18", "DEFAULT")


def test_swin3d_channel_last_layers_are_pooled_per_channel():
    import copy

    from torchvision.models.video.swin_transformer import SwinTransformer3d

    from neuroprobe.models.registry import ModelSpec
    from neuroprobe.models.video import _taps_for

    torch.manual_seed(0)  # a small Swin3D; swin3d_t gets the same taps (video_model -> _taps_for)
    net = SwinTransformer3d(
        patch_size=[2, 4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 1], window_size=[2, 2, 2]
    ).eval()
    aliases = _taps_for("swin3d_t", net)
    assert (
        aliases["features.2"] == "taps.features_2"
        and list(dict(net.named_children()))[-1] == "head"
    )
    spec = ModelSpec(module=net, modality="video", name="tiny_swin", aliases=aliases)
    x = torch.randn(2, 3, 4, 32, 32)
    ext = DNNFeatureExtractor(spec, layers=["features.2"], pooling="mean", batch_size=2)
    feats = ext.fit_transform(x)
    module = copy.deepcopy(net)  # the extractor's model cache deep-copies networks
    with torch.no_grad(), capture(module, ["features.2"]) as out:  # raw: (B, T, H, W, C)
        module(x)
    raw = out["features.2"]
    assert ext.layer_shapes_["features.2"] == (raw.shape[-1], *raw.shape[1:4])
    np.testing.assert_allclose(feats, raw.mean((1, 2, 3)).numpy(), rtol=1e-5, atol=1e-6)


def test_mvit_token_tap_drops_the_class_token():
    from neuroprobe.models.video import _TokensToVideo

    tokens = torch.randn(2, 1 + 2 * 3 * 4, 5)
    video = _TokensToVideo()((tokens, [2, 3, 4]))
    assert video.shape == (2, 5, 2, 3, 4)
    # token k = (t, y, x) in row-major order, as MViT flattens (T, H, W)
    torch.testing.assert_close(video[:, :, 1, 2, 3], tokens[:, 1 + 1 * 12 + 2 * 4 + 3])

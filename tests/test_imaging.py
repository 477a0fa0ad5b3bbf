"""Image helpers: HLS colour conversion (also under autograd) and PNG writing."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from fooling import imaging
from fooling.errors import FoolingError
from fooling.imaging import hls_to_rgb, save_png
from helpers import read_png


def test_hls_to_rgb_in_chunks_gives_the_same_numbers(monkeypatch):
    """PyTorch's CPU passes, a few images at a time (float64: float32 genomes take fooling.hls_cpu's pass)."""
    hls = torch.rand(7, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    whole = hls_to_rgb(hls)  # 5,376 values: one pass
    monkeypatch.setattr(imaging, "HLS_CHUNK_VALUES", 1000)  # 768 values an image: one image at a time
    assert torch.equal(hls_to_rgb(hls), whole)
    assert torch.equal(torch.cat([hls_to_rgb(h[None]) for h in hls]), whole)


def test_the_unit_hue_conversion_is_the_general_one_bit_for_bit():
    """Every hue in [0, 1] (a dense sweep, each twelfth and its float neighbours) with random lightness and
    saturation: the CPU chunks' faster formula gives the general conversion's numbers exactly."""
    twelfths = torch.tensor([k / 12 for k in range(13)])
    hue = torch.cat([torch.linspace(0, 1, 1_000_001), twelfths, torch.nextafter(twelfths, torch.tensor(2.0)),
                     torch.nextafter(twelfths, torch.tensor(-1.0))]).clamp(0, 1)
    rest = torch.rand(2, len(hue), generator=torch.Generator().manual_seed(2))
    rest[:, :4] = torch.tensor([[0.0, 1.0, 0.5, 0.5], [1.0, 1.0, 0.0, 1.0]])
    hls = torch.stack([hue, rest[0], rest[1]], 1).view(-1, 3, 1, 1)
    assert torch.equal(imaging._hls_to_rgb(hls, unit_hue=True), imaging._hls_to_rgb(hls))


def test_chunks_with_hues_outside_0_1_wrap_them(monkeypatch):
    hls = torch.rand(6, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    hls[2, 0, 0, 0], hls[4, 0, 3, 3] = 1.5, -0.25  # the unit-hue formula would not wrap these
    monkeypatch.setattr(imaging, "HLS_CHUNK_VALUES", 200)  # one image a chunk
    assert torch.equal(hls_to_rgb(hls), imaging._hls_to_rgb(hls))
    assert torch.equal(hls_to_rgb(hls[2:3])[0, :, 0, 0], imaging._hls_to_rgb(hls[2:3] - torch.tensor(
        [1.0, 0.0, 0.0]).view(1, 3, 1, 1))[0, :, 0, 0])  # hue 1.5 is hue 0.5


def test_hls_to_rgb_gives_the_same_numbers_with_and_without_autograd():
    hls = torch.rand(4, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hls[:, :, :2] = 0.0  # hue 0, black, no saturation
    hls[:, :, 2:4] = 1.0
    with torch.no_grad():
        fast = hls_to_rgb(hls)
    tracked = hls.clone().requires_grad_(True)
    slow = hls_to_rgb(tracked)
    assert slow.requires_grad and torch.equal(fast, slow.detach())
    assert torch.equal(hls_to_rgb(hls), fast) and not hls_to_rgb(hls).requires_grad
    assert torch.equal(hls, hls.clone())  # the input is never written to


@pytest.mark.slow
def test_hls_to_rgb_compiled_gives_the_same_numbers(monkeypatch):
    monkeypatch.setattr(imaging, "_fused", [])
    hls = torch.rand(6, 3, 64, 48, generator=torch.Generator().manual_seed(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed compile warns: this machine cannot compile
        try:
            fused = hls_to_rgb(hls, compiled=True)
        except RuntimeWarning as err:
            pytest.skip(f"torch.compile is not usable here: {err}")
    assert torch.equal(fused, hls_to_rgb(hls))


def test_hls_to_rgb_falls_back_to_eager_when_it_cannot_compile(monkeypatch):
    def broken(fn):
        def call(x):
            raise RuntimeError("no C++ compiler\nsecond line")
        return call

    monkeypatch.setattr(imaging, "_fused", [])
    monkeypatch.setattr(torch, "compile", broken)
    hls = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    with pytest.warns(RuntimeWarning, match="could not fuse the HLS decode \\(no C\\+\\+ compiler\\)"):
        assert torch.equal(hls_to_rgb(hls, compiled=True), hls_to_rgb(hls))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # once: later calls go straight to the eager passes
        assert torch.equal(hls_to_rgb(hls, compiled=True), hls_to_rgb(hls))


def test_hls_to_rgb_has_the_right_gradients():
    # away from the kinks of the piecewise-linear hue ramps, the lightness 1/2 and the [0, 1] bounds
    hls = torch.tensor([[0.05, 0.3, 0.7], [0.4, 0.6, 0.2], [0.7, 0.45, 0.9], [0.93, 0.2, 0.5]],
                       dtype=torch.float64).T.reshape(1, 3, 4).contiguous().requires_grad_(True)
    assert torch.autograd.gradcheck(hls_to_rgb, (hls,))


@pytest.mark.parametrize("shape", [(256, 256, 3), (200, 300, 1), (128, 96, 4), (28, 28, 1), (150, 200)])
def test_png_round_trips_noise(shape, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    save_png(image, tmp_path / "x.png")
    expected = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    assert np.array_equal(np.asarray(read_png(tmp_path / "x.png")), expected)


def test_png_of_a_smooth_image_is_compressed(tmp_path):
    y, x = np.mgrid[0:256, 0:256]
    image = np.stack([x, y, (x + y) // 2], -1).astype(np.uint8)
    save_png(image, tmp_path / "smooth.png")
    assert np.array_equal(np.asarray(read_png(tmp_path / "smooth.png")), image)
    assert (tmp_path / "smooth.png").stat().st_size < image.nbytes / 10


def _level1_images():
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:224, 0:224]
    smooth = np.stack([x, y, (x * y) % 251], -1).astype(np.uint8)
    blocky = np.repeat(np.repeat(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), 2, 0), 2, 1)
    return {"smooth": smooth, "blocky": blocky, "noise": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
            "grey": smooth[..., 0].copy(), "rgba": np.concatenate([smooth, smooth[..., :1]], -1),
            "strided": blocky[:, ::2]}


@pytest.mark.parametrize("name", ["smooth", "blocky", "noise", "grey", "rgba", "strided"])
def test_level_1_png_is_written_by_our_encoder_and_round_trips(name):
    image = _level1_images()[name]
    data = imaging.png_bytes(image, level=1)
    assert np.array_equal(np.asarray(read_png(io.BytesIO(data))), image)
    if name == "noise":
        assert imaging._row_filter(image) == imaging.STORED
    elif name in ("smooth", "blocky"):  # the filter chosen on sampled rows is the one whose whole file is smaller
        sizes = [len(imaging._deflated_png(image, row_filter, 1)) for row_filter in (0, 1)]
        assert imaging._row_filter(image) == int(np.argmin(sizes)) and len(data) == min(sizes)
        assert name != "smooth" or imaging._row_filter(image) == 1  # gradients deflate best along the row
    if name != "strided":  # rows repeated in pairs only: PNG's Up filter (Pillow's choice) halves that file
        pillow = io.BytesIO()
        Image.fromarray(image).save(pillow, format="PNG", compress_level=1)
        assert len(data) < 1.1 * len(pillow.getvalue()) + 1024  # about Pillow's size at the same level


def test_png_from_a_float_tensor_with_upscaling(tmp_path):
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))
    save_png(image, tmp_path / "x.png", scale=2)
    expected = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy().repeat(2, 0).repeat(2, 1)
    assert np.array_equal(np.asarray(read_png(tmp_path / "x.png")), expected)


def _png_with_header(width: int, height: int) -> bytes:
    """A grey PNG that declares width x height but holds almost no data (a decompression-bomb header)."""
    import struct
    import zlib

    from fooling.imaging import _png_chunk

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def test_load_image_bad_files_are_one_line_errors(tmp_path):
    import pytest

    from fooling.errors import FoolingError
    from fooling.imaging import load_image, save_png
    from fooling.limits import MAX_IMAGE_PIXELS

    good = tmp_path / "good.png"
    save_png(torch.rand(3, 40, 40), good)
    assert load_image(good).shape == (1, 3, 40, 40)
    cases = {
        "truncated.png": (good.read_bytes()[: len(good.read_bytes()) // 2], "truncated"),
        "junk.png": (b"hello, not an image", "not an image"),
        "bomb.png": (_png_with_header(100_000, 100_000), "too many pixels"),
        "big.png": (_png_with_header(9000, 9000), f"{MAX_IMAGE_PIXELS:,}"),
        "short.png": (_png_with_header(64, 64), "broken image"),
        # resized for an ImageNet network (shorter side 256), 60000x1 would be 256 x 15,360,000: gigabytes
        "wide.png": (_png_with_header(60000, 1), "60000x1 pixels, one side more than 64 times the other"),
        "tall.png": (_png_with_header(2, 129), "one side more than 64 times"),
    }
    for name, (data, fragment) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FoolingError, match=fragment) as err:
            load_image(tmp_path / name)
        assert str(tmp_path / name) in str(err.value) and "\n" not in str(err.value)
    save_png(torch.rand(3, 1, 64), tmp_path / "narrow.png")  # 64:1 is still read
    assert load_image(tmp_path / "narrow.png").shape == (1, 3, 1, 64)
    with pytest.raises(FoolingError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(FoolingError, match="folder"):
        load_image(tmp_path)


def test_load_image_reads_16_bit_grey_at_its_depth(tmp_path):
    """A 16-bit grey PNG came back almost all white: Pillow's convert("L") clips I;16 values above 255."""
    from fooling.imaging import load_image

    values = np.array([[0, 1000, 32768], [40000, 60000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    want = torch.from_numpy(values.astype(np.float32) / 65535)
    torch.testing.assert_close(load_image(tmp_path / "deep.png", channels=1)[0, 0], want)
    torch.testing.assert_close(load_image(tmp_path / "deep.png")[0], want.expand(3, -1, -1))


def test_load_image_reads_float_grey_in_0_1_or_0_255_and_refuses_other_values(tmp_path):
    """A 32-bit float TIFF (Pillow's mode F) with values in [0, 1] came back black: Pillow's convert rounds to
    integers 0-255. Values up to 1 are read as they are, up to 255 as 8-bit levels; others are a one-line error."""
    from fooling.imaging import load_image

    unit = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(unit, mode="F").save(tmp_path / "unit.tif")
    torch.testing.assert_close(load_image(tmp_path / "unit.tif", channels=1)[0, 0], torch.from_numpy(unit))
    torch.testing.assert_close(load_image(tmp_path / "unit.tif")[0], torch.from_numpy(unit).expand(3, -1, -1))
    Image.fromarray(unit * np.float32(1.0000001), mode="F").save(tmp_path / "over.tif")  # rounding, not 0-255
    torch.testing.assert_close(load_image(tmp_path / "over.tif", channels=1)[0, 0], torch.from_numpy(unit))
    Image.fromarray(unit * 255, mode="F").save(tmp_path / "levels.tif")
    torch.testing.assert_close(load_image(tmp_path / "levels.tif", channels=1)[0, 0], torch.from_numpy(unit))
    for name, bad in (("negative", unit - 0.5), ("bright", unit * 1000)):
        Image.fromarray(bad.astype(np.float32), mode="F").save(tmp_path / f"{name}.tif")
        with pytest.raises(FoolingError, match="floating-point image with values from"):
            load_image(tmp_path / f"{name}.tif")
    # one NaN or infinity among good values was reported as "values from nan to nan"
    for name, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        bad = unit.copy()
        bad[0, 0] = value
        Image.fromarray(bad, mode="F").save(tmp_path / f"{name}.tif")
        with pytest.raises(FoolingError, match="floating-point image with NaN or infinite values") as err:
            load_image(tmp_path / f"{name}.tif")
        assert "\n" not in str(err.value)


def test_load_image_turns_a_photo_upright_by_its_exif_orientation(tmp_path):
    """A camera's sideways JPEG (EXIF orientation 6: shown turned 90 degrees clockwise) was read as stored, so
    fool attack attacked it sideways and wrote it back without the tag: the user's photo came back turned."""
    from fooling.imaging import load_image

    stored = np.zeros((20, 30, 3), dtype=np.uint8)
    stored[:, :10] = 255  # a white band on the left as stored: on top once shown upright
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    image = load_image(tmp_path / "phone.jpg")
    assert image.shape == (1, 3, 30, 20)
    assert image[0, :, :8].mean() > 0.9 and image[0, :, -8:].mean() < 0.1

"""Training-time evaluation and serving share one preprocessing implementation, bit for bit."""

import io

import numpy as np
from PIL import Image

from export.data import Sample
from export.evaluate import load_arrays
from export.train import load_image
from hematovision.logic import preprocessing
from hematovision.logic.preprocessing import preprocess


def test_export_loads_images_with_the_serving_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    path = tmp_path / "cell.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    sample = Sample(path, 0, "test", "test")
    served = preprocess(path.read_bytes())
    assert served.shape == (224, 224, 3) and served.dtype == np.uint8
    np.testing.assert_array_equal(load_arrays([sample], 224)[0], served)
    np.testing.assert_array_equal(load_image(sample, 224), served)


def test_exif_orientation_is_applied_before_resizing():
    tall = np.zeros((300, 200, 3), dtype=np.uint8)
    tall[:50] = 255  # a white band at the top of the upright image
    stored = Image.fromarray(np.rot90(tall, 1))  # stored sideways, as a phone does
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    upright = preprocess(buffer.getvalue())
    assert upright[:20].mean() > 200 and upright[-100:].mean() < 40
    assert preprocessing.RESAMPLE == Image.Resampling.BILINEAR

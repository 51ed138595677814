"""The unsupported_image message names exactly the formats decode accepts (issue #19's note on the 415 message).

A client told "not a supported image (JPEG, PNG, ...)" must be able to send any format named there, and no accepted
format may be missing from it (GIF once was).
"""

import io
import re

import numpy as np
import pytest
from PIL import Image

from hematovision.errors import ClientError
from hematovision.logic import preprocessing

# Pillow's format id -> the name the message uses
NAMES = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "BMP": "BMP", "TIFF": "TIFF", "WEBP": "WebP"}


def _named() -> list[str]:
    inside = re.search(r"\(([^)]*)\)", preprocessing.UNSUPPORTED_MESSAGE)
    assert inside, preprocessing.UNSUPPORTED_MESSAGE
    return [name.strip() for name in inside.group(1).split(",")]


def test_the_message_names_every_format_decode_opens_and_no_other():
    assert sorted(_named()) == sorted(NAMES[fmt] for fmt in preprocessing._open_formats())


@pytest.mark.parametrize("fmt", sorted(NAMES))
def test_every_named_format_decodes(fmt):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    decoded = preprocessing.decode_for_model(buffer.getvalue())
    assert (decoded.width, decoded.height) == (50, 40) and decoded.image.mode == "RGB"


def test_a_body_of_no_format_gets_the_message():
    with pytest.raises(ClientError) as raised:
        preprocessing.decode_for_model(b"hello, I am a text file\n" * 4)
    assert raised.value.code == "unsupported_image" and raised.value.message == preprocessing.UNSUPPORTED_MESSAGE

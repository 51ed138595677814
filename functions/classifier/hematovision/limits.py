"""Request and image limits, shared by the request schemas (models/), the use case (logic/) and the handler.

API Gateway refuses bodies over 10 MB and Lambda events over 6 MB (base64 adds 4/3), so no single upload can
exceed ~4.5 MB in practice; these caps apply inside the function.
"""

MAX_IMAGE_BYTES = 6 * 1024 * 1024
MAX_BATCH_ITEMS = 16
MAX_BATCH_BYTES = 6 * 1024 * 1024
# Decoded pixel budget: a 50 MP phone photo passes, a decompression bomb does not.
MAX_PIXELS = 50_000_000
# Decoded byte budgets (issue #20): a small file declaring 50 MP must not take the function past 75% of its memory
# (set for a 1024 MB MemorySize, 768 MB of it; the template's is now 1769 MB, so they hold with room to spare).
# The cost of an image is the bytes its decoded pixels take (Pillow's bytes per pixel of the decoded mode x pixels,
# after a JPEG's reduced-scale draft; x2 for WebP) plus the full-size conversion it needs before it can be reduced
# (logic/preprocessing.py). One image: a 50 MP RGB(A) PNG or TIFF (200 MB) passes, a 50 MP WebP with alpha (400 MB)
# does not; any 12 MP field passes (<= 96 MB).
MAX_DECODE_BYTES = 256 * 1024 * 1024
# All the images of one request together: this bounds its decode time (a 2.6 MB batch of 16 tiny 50 MP PNGs took
# 30 s and > 1 GB before; now one 50 MP RGBA PNG, ~1 s on one core, plus 12 MP fields in the 130 MiB left). JPEGs
# are costed at their reduced draft size: a 12 MP photo costs ~6 MB, so a batch of 16 of them is far under it.
MAX_REQUEST_DECODE_BYTES = 320 * 1024 * 1024
# Shortest accepted side of an (upright) image, in pixels.
MIN_SIDE = 16
# Images per onnxruntime call (a request's batch, the CLI's and the model card's evaluation): large runs never
# build one huge tensor.
INFERENCE_BATCH = 32
# Heatmap overlays are returned as small palette PNGs of this side length.
HEATMAP_SIZE = 224
# POST /v1/analyze lists at most this many cells (and says `truncated`); its counts cover every cell found.
MAX_ANALYZE_CELLS = 64

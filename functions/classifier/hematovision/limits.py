"""Request and image limits, shared by the request schemas (models/), the use case (logic/) and the handler.

API Gateway refuses bodies over 10 MB and Lambda events over 6 MB (base64 adds 4/3), so no single upload can
exceed ~4.5 MB in practice; these caps apply inside the function.
"""

MAX_IMAGE_BYTES = 6 * 1024 * 1024
MAX_BATCH_ITEMS = 16
MAX_BATCH_BYTES = 6 * 1024 * 1024
# Decoded pixel budget: a 50 MP phone photo passes, a decompression bomb does not.
MAX_PIXELS = 50_000_000
# Shortest accepted side of an (upright) image, in pixels.
MIN_SIDE = 16
# Images per onnxruntime call (a request's batch, the CLI's and the model card's evaluation): large runs never
# build one huge tensor.
INFERENCE_BATCH = 32
# Heatmap overlays are returned as small palette PNGs of this side length.
HEATMAP_SIZE = 224

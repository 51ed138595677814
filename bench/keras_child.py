"""The paper's path, run in the TensorFlow venv (.venv-export) in a process of its own per thread setting.

    python -m bench.keras_child warm --keras-model M --threads N --images-file F --result OUT
    python -m bench.keras_child cold --keras-model M --threads N --image IMG --result OUT

warm: the Keras model loaded from the exported .keras file; `model.predict` on preprocessed images (the same
decode + resize as serving, done outside the timed region), and the same model called inside a
`tf.function`; batch 1 and 8. tf.config.threading is set before TensorFlow initialises its thread pools,
hence one process per setting.
cold: import TensorFlow, load the Keras model, decode + preprocess one image, predict once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

T_PROCESS = time.time()

from bench.common import child_parser, peak_rss_mib, run_mode, summary_ms  # noqa: E402


def init_tensorflow(threads: int):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def warm(args) -> dict:
    import numpy as np

    from hematovision.logic.preprocessing import preprocess

    started = time.perf_counter()
    tf = init_tensorflow(args.threads)
    import keras

    model = keras.models.load_model(args.keras_model)
    init_s = time.perf_counter() - started
    paths = [line.strip() for line in Path(args.images_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    # float32 [0, 255] "pixels"
    images = np.stack([preprocess(Path(p).read_bytes()) for p in paths]).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32)])
    def serve(x):
        return model(x, training=False)

    result: dict = {
        "threads": args.threads,
        "init_s": round(init_s, 3),
        "images": len(images),
        "predict": {},
        "tf_function": {},
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    for batch in args.batches:
        chunks = [images[i : i + batch] for i in range(0, len(images) - batch + 1, batch)]
        for x in chunks[: max(1, args.warmup // batch)]:
            model.predict(x, batch_size=batch, verbose=0)
            serve(tf.constant(x)).numpy()
        durations = []
        for x in chunks:
            start = time.perf_counter()
            model.predict(x, batch_size=batch, verbose=0)
            durations.append(time.perf_counter() - start)
        result["predict"][str(batch)] = summary_ms(durations, per=batch)
        durations = []
        for x in chunks:
            start = time.perf_counter()
            serve(tf.constant(x)).numpy()
            durations.append(time.perf_counter() - start)
        result["tf_function"][str(batch)] = summary_ms(durations, per=batch)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def cold(args) -> dict:
    t0 = time.perf_counter()
    tf = init_tensorflow(args.threads)
    import keras
    import numpy as np

    from hematovision.logic.preprocessing import preprocess

    t_import = time.perf_counter()
    model = keras.models.load_model(args.keras_model)
    t_load = time.perf_counter()
    x = preprocess(Path(args.image).read_bytes())[None].astype(np.float32)
    probabilities = model.predict(x, verbose=0)
    t_answer = time.perf_counter()
    answered_at = time.time()
    del tf
    return {
        "process_start": T_PROCESS,
        "answered_at": answered_at,
        "phases": {"imports": t_import - t0, "load Keras model": t_load - t_import, "first answer": t_answer - t_load},
        "label_index": int(np.argmax(probabilities[0])),
        "peak_rss_mib": peak_rss_mib(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0], "--keras-model")
    args = parser.parse_args(argv)
    return run_mode(args, warm, cold)


if __name__ == "__main__":
    sys.exit(main())

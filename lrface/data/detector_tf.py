"""The ``mtcnn`` package's detector (TensorFlow): the reference :mod:`lrface.data.detector`
reproduces, kept for the equivalence test and the side-by-side benches.

TensorFlow is not a runtime dependency of lrface: install the ``tf-reference`` extra
(``pip install -e '.[tf-reference]'``) to use this module.
"""

from __future__ import annotations

import os

import numpy as np

from lrface.data.detection import Face


class MTCNNDetector:
    """The ``mtcnn`` package's detector with float landmarks; one TensorFlow thread by default."""

    def __init__(self, threads: int = 1, min_face_size: int = 20) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            import tensorflow as tf
        except ImportError as e:
            raise ImportError("the TensorFlow MTCNN (align.detector: tensorflow) needs TensorFlow, which "
                              "lrface does not install by default: pip install -e '.[tf-reference]'") from e

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TensorFlow already initialised in this process; keep its settings
        from mtcnn import MTCNN

        self._mtcnn = MTCNN()
        self.min_face_size = min_face_size

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Detect faces in images of one shape in one pass (about 3x faster than one by one)."""
        if not images:
            return []
        if len({im.shape for im in images}) != 1:
            raise ValueError("detect_batch needs images of one shape")
        rows = self._mtcnn.detect_faces(
            list(images), box_format="xyxy", output_type="numpy", min_face_size=self.min_face_size
        )
        # numpy rows: image index, x1, y1, x2, y2, score, then the 5 landmark xs, then the 5 ys
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
        out: list[list[Face]] = [[] for _ in images]
        for r in rows:
            out[int(r[0])].append(
                Face(tuple(float(v) for v in r[1:5]), float(r[5]), r[6:16].reshape(2, 5).T.copy())
            )
        return out

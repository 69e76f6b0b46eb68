"""QMUL-SurvFace face verification: native low-resolution surveillance faces on both sides.

Layout (as distributed): ``<root>/Face_Verification_Test_Set/{positive,negative}_pairs_names.mat``
and ``verification_images/``. The protocol reports TAR at FAR = 0.3, 0.1, 0.01, 0.001
(interpolated on the ROC), AUC, and the mean 10-fold accuracy (as for LFW). Each image is
restored by the method under test at its native size, resized to 112x96 and embedded with flips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lrface.data.images import BadImage, load_rgb
from lrface.data.sources import Pair, read_survface_pairs
from lrface.eval.verification import auc, cosine_scores, kfold_accuracy, roc_curve, tar_at_far
from lrface.models.mobilefacenet import FrozenFRNet
from lrface.restoration import Restorer, flip_features

FARS = (0.3, 0.1, 0.01, 0.001)


@dataclass
class SurvFaceResult:
    method: str
    tar: dict[float, float]
    auc: float
    acc: float
    acc_std: float
    pairs: int

    def metrics(self) -> dict[str, float]:
        out = {f"survface/tar@far={far:g}": v for far, v in self.tar.items()}
        out.update({"survface/auc": self.auc, "survface/acc": self.acc})
        return out


@torch.inference_mode()
def embed_images(frnet: FrozenFRNet, paths: list[Path], restorer: Restorer) -> np.ndarray:
    """One image at a time (native sizes differ): restore -> 112x96 -> flip features."""
    feats = np.empty((len(paths), 256), np.float32)
    for i, p in enumerate(paths):
        img = load_rgb(p, _limits())
        x = torch.from_numpy(img).permute(2, 0, 1).float().div(255).unsqueeze(0)
        feats[i] = flip_features(frnet, x, restorer).numpy()[0]
    return feats


def _limits():
    from lrface.data.images import DecodeLimits

    return DecodeLimits(min_side=4)  # surveillance faces are tiny by nature


def evaluate_survface(frnet: FrozenFRNet, root: str | Path, restorer: Restorer) -> SurvFaceResult:
    """Run the verification protocol for one method; a missing image is an error naming it."""
    root = Path(root)
    pairs: list[Pair] = read_survface_pairs(root)
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    base = root / "Face_Verification_Test_Set"
    for rel in images:
        if not (base / rel).is_file():
            raise BadImage(base / rel, "missing", "listed in the SurvFace pairs")
    index = {rel: i for i, rel in enumerate(images)}
    feats = embed_images(frnet, [base / r for r in images], restorer)
    fa = feats[[index[p.a] for p in pairs]]
    fb = feats[[index[p.b] for p in pairs]]
    same = np.array([p.same for p in pairs])
    roc = roc_curve(cosine_scores(fa, fb), same)
    folds = kfold_accuracy(fa, fb, same, np.array([p.fold for p in pairs]))
    return SurvFaceResult(restorer.name, {far: tar_at_far(roc, far) for far in FARS}, auc(roc),
                          folds.mean, folds.std, len(pairs))

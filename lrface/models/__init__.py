"""Networks of the method. Models know no files and no training loops."""

from lrface.models.mobilefacenet import FrozenFRNet, MobileFaceNet
from lrface.models.srnet import SRNet, SRNetConfig
from lrface.models.summary import ModelSize, computation_digest, model_size, weights_digest

__all__ = ["FrozenFRNet", "MobileFaceNet", "ModelSize", "SRNet", "SRNetConfig", "computation_digest", "model_size",
           "weights_digest"]

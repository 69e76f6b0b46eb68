"""Model sizes and CPU forward time per face: SRNet vs bicubic upsampling, and FRNet.

Usage: python bench/model_size.py [--params params.yaml] [--batch 64] [--repeats 5] [--threads N]
Prints one table; numbers are medians over ``--repeats`` timed runs after one warm-up.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from timing import median_ms

from lrface.checkpoints import load_frnet
from lrface.config import load_params
from lrface.models import SRNet, SRNetConfig, model_size

LR_SIZES = [(7, 6), (14, 12), (28, 24)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    cfg = SRNetConfig.from_dict(params.section("model"))
    srnet = SRNet(cfg).eval()
    frnet = load_frnet(params.path("frnet_checkpoint"))
    n = args.batch

    print(f"torch {torch.__version__}, {args.threads} threads, batch {n}, median of {args.repeats}")
    print(f"{'model':<8}{'params':>12}{'MB on disk':>12}")
    for name, m in (("SRNet", srnet), ("FRNet", frnet.net)):
        s = model_size(m)
        print(f"{name:<8}{s.params:>12,}{s.megabytes:>12.2f}")
    print()
    print(f"{'input':<8}{'output':<10}{'SRNet ms/face':>15}{'bicubic ms/face':>17}{'ratio':>8}")
    with torch.inference_mode():
        for h, w in LR_SIZES:
            x = torch.rand(n, 3, h, w)
            out = (h * cfg.scale, w * cfg.scale)
            t_sr = median_ms(lambda x=x: srnet(x), args.repeats) / n
            t_bi = median_ms(
                lambda x=x, out=out: F.interpolate(x, size=out, mode="bicubic", align_corners=False),
                args.repeats,
            ) / n
            print(
                f"{f'{h}x{w}':<8}{f'{out[0]}x{out[1]}':<10}{t_sr:>15.4f}{t_bi:>17.4f}{t_sr / t_bi:>7.0f}x"
            )
    frnet_precisions(frnet, args.repeats)


def frnet_precisions(frnet, repeats: int, batch: int = 32) -> None:
    """FRNet per face side by side: the release before's (fp32, BatchNorm layers run as such),
    then what runs now (BN folded into the convs: lrface.models.fusion) in fp32 / bf16 autocast /
    torch.compile; the forward pass (evaluation, inference) and forward + backward to the input
    (the identity loss)."""
    import copy

    from lrface.models.mobilefacenet import FrozenFRNet, normalize_faces
    from lrface.models.precision import cpu_has_native_bf16

    unfolded = copy.deepcopy(frnet.net).to(memory_format=torch.channels_last)

    def before(x: torch.Tensor) -> torch.Tensor:
        return unfolded(normalize_faces(x).contiguous(memory_format=torch.channels_last))

    faces = torch.rand(batch, 3, 112, 96)
    variants = {"fp32, BN unfolded (before)": before, "fp32": FrozenFRNet(frnet.net, "fp32"),
                "bf16": FrozenFRNet(frnet.net, "bf16"), "compile": torch.compile(FrozenFRNet(frnet.net, "fp32"))}

    def fwd_bwd(m):
        x = faces.clone().requires_grad_(True)
        m(x).sum().backward()

    print(f"\nFRNet 112x96 (channels-last), batch {batch}, ms per face; native bf16: {cpu_has_native_bf16()}")
    print(f"{'variant':<28}{'forward':>10}{'fwd+bwd':>10}")
    base = None
    for name, m in variants.items():
        with torch.inference_mode():
            m(faces)  # compile / warm-up outside the timing
        fwd_bwd(m)
        with torch.inference_mode():
            t_f = median_ms(lambda m=m: m(faces), repeats) / batch
        t_b = median_ms(lambda m=m: fwd_bwd(m), repeats) / batch
        base = base or (t_f, t_b)
        print(f"{name:<28}{t_f:>10.3f}{t_b:>10.3f}   ({base[0] / t_f:.2f}x / {base[1] / t_b:.2f}x vs the first row)")


if __name__ == "__main__":
    main()

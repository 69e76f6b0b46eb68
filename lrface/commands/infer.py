"""``lrface verify`` (1:1) and ``lrface identify`` (1:N) on real images."""

from __future__ import annotations

import argparse
import json

from lrface.commands import add_model_arguments, params_from_args, positive_int


def _model_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="JSON output instead of a table")


def add_verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--face-a", type=int, help="which face of A (index in the listing; default the largest)")
    p.add_argument("--face-b", type=int, help="which face of B")
    _model_arguments(p)


def add_identify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("probe")
    p.add_argument("--gallery", required=True, help="folder of enrolled faces: <identity>/<image> or <identity>.jpg")
    p.add_argument("--top-k", type=positive_int, default=5)
    p.add_argument("--cache", help="Parquet cache of the gallery's embeddings "
                                   "(default: <work_dir>/cache/gallery/<hash of the folder>.parquet)")
    p.add_argument("--face", type=int, help="which face of the probe (default the largest)")
    p.add_argument("--no-progress", action="store_true")
    _model_arguments(p)


def _verifier(args: argparse.Namespace, params=None):
    from lrface.inference import load_verifier

    return load_verifier(params or params_from_args(args), None if args.bicubic else args.srnet, args.threshold,
                         args.protocol)


def _faces_table(e) -> list[str]:
    lines = []
    for i, f in enumerate(e.faces):
        mark = "*" if i == e.used else " "
        box = ", ".join(f"{v:.0f}" for v in f.box)
        lines.append(f"  {mark} face {i}: box [{box}], {f.width_px:.1f} px wide, score {f.score:.3f}")
    lines.append(f"    used face {e.used}: {e.route} from {e.size}")
    return lines


def run_verify(args: argparse.Namespace) -> int:
    v = _verifier(args)
    res = v.verify(args.image_a, args.image_b, [args.face_a, args.face_b])
    if args.json:
        print(json.dumps({**res.as_dict(), "model": v.model_name}, indent=2))
        return 0
    for label, e in (("A", res.a), ("B", res.b)):
        print(f"{label}: {e.source} ({len(e.faces)} face{'s' if len(e.faces) != 1 else ''})")
        print("\n".join(_faces_table(e)))
    far = (f" (FAR {res.far:g} at {res.size}, {res.protocol} calibration, {v.model_name})"
           if res.far is not None else " (fixed)")
    print(f"similarity {res.similarity:.4f}, threshold {res.threshold:.4f}{far}: "
          f"{'SAME person' if res.same else 'DIFFERENT people'}")
    return 0


def run_identify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lrface.inference import InferenceError
    from lrface.inference.gallery import build_gallery, default_cache_path
    from lrface.inference.thresholds import decided_by

    params = params_from_args(args)
    v = _verifier(args, params)
    root = Path(args.gallery).resolve()
    cache = Path(args.cache) if args.cache else default_cache_path(params.path("work_dir"), root)
    gallery = build_gallery(v, root, cache, progress=not args.no_progress)
    if not gallery.paths:
        raise ValueError(f"{root}: no gallery image has a usable face ({len(gallery.failed)} failed)")
    probe = v.embed([args.probe], [args.face])[0]
    hits = gallery.search(probe.embedding[None], args.top_k)[0]

    def calibration(j: int) -> tuple[float | None, str | None]:
        """The measured threshold for this probe against gallery face ``j`` and whose calibration it
        is (None, None: uncalibrated, unless --threshold)."""
        try:
            thr, size = v.threshold_for(probe, gallery.grids[j])
        except InferenceError:
            return args.threshold, None
        return thr, decided_by(size, v.config)

    calib = {i: calibration(i) for i, _ in hits}
    result = {
        "probe": probe.summary(), "model": v.model_name,
        "gallery": {"folder": str(root), "enrolled": len(gallery.paths), "failed": gallery.failed,
                    "reused_from_cache": gallery.reused, "embedded": gallery.embedded, "cache": str(cache)},
        "matches": [{"rank": r + 1, "identity": gallery.identities[i], "path": gallery.paths[i],
                     "similarity": round(s, 6), "threshold": calib[i][0], "threshold_protocol": calib[i][1],
                     "accepted": None if calib[i][0] is None else bool(s >= calib[i][0])}
                    for r, (i, s) in enumerate(hits)],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"probe: {probe.source}")
    print("\n".join(_faces_table(probe)))
    g = result["gallery"]
    print(f"gallery: {g['enrolled']} faces ({g['reused_from_cache']} from cache, {g['embedded']} embedded, "
          f"{len(g['failed'])} failed)")
    for m in result["matches"]:
        ok = "" if m["accepted"] is None else ("  match" if m["accepted"] else "")
        print(f"  {m['rank']:>2}. {m['identity']:<30} {m['similarity']:.4f}{ok}")
    used = sorted({m["threshold_protocol"] for m in result["matches"] if m["threshold_protocol"]})
    fixed = v.config.threshold is not None
    print("decisions: " + ("a fixed threshold" if fixed else f"{', '.join(used) or 'no'} calibration, "
                           f"FAR {v.config.far:g}"))
    return 0


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for srnet.onnx and frnet.onnx")
    p.add_argument("--srnet", default="", metavar="SPEC",
                   help="SRNet checkpoint path or models:/... (default: inference.srnet)")


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from lrface.checkpoints import load_frnet
    from lrface.export import export_frnet, export_srnet, max_difference
    from lrface.inference import load_verifier

    params = params_from_args(args)
    v = load_verifier(params, args.srnet, threshold=0.0)  # threshold unused: no lookup needed
    if v.srnet is None:
        raise ValueError("no SRNet to export: pass --srnet or set inference.srnet")
    out = Path(args.out)
    report = {}
    sr = export_srnet(v.srnet, out / "srnet.onnx")
    report["srnet"] = {"path": str(sr), "max_abs_diff": max_difference(
        v.srnet, sr, [torch.rand(1, 3, 7, 6), torch.rand(4, 3, 14, 12), torch.rand(2, 3, 28, 24)])}
    frnet = load_frnet(params.path("frnet_checkpoint"))  # fp32, as the ONNX graph: compared with itself
    fr = export_frnet(frnet, out / "frnet.onnx")
    report["frnet"] = {"path": str(fr), "max_abs_diff": max_difference(frnet, fr, [torch.rand(3, 3, 112, 96)])}
    print(json.dumps(report, indent=2))
    return 0

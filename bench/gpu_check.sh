#!/usr/bin/env bash
# GPU check (at most 8 minutes; never in CI): alpha=0.5 SRNet training on one GPU with lrface's own
# code path (Ray Train, use_gpu: true, NCCL, FRNet under bf16 autocast), printing samples/s and the
# validator's numbers (identity cosine, PSNR per scale, beside bicubic); then the torch MTCNN on CUDA
# against the CPU (tests/test_detector.py::test_cuda_matches_cpu).
#
#   bash bench/gpu_check.sh            # LRFACE_SHARED (default ../shared) holds data/ and weights/
#
# Needs a venv with a CUDA build of torch (.ci/install pins the CPU wheel: on a GPU machine install
# the matching CUDA wheel of torch 2.13.0 first). The training set is 2,000 LFW faces outside the
# test pairs, aligned with the reference landmarks (no detector), so the check fits its budget.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SHARED=$(cd "${LRFACE_SHARED:-../shared}" && pwd)
WORK=${LRFACE_GPU_WORK:-$(mktemp -d /tmp/lrface-gpu-XXXX)}
export MLFLOW_DISABLE_TELEMETRY=true RAY_USAGE_STATS_ENABLED=0 DVC_NO_ANALYTICS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" - <<'PY'
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device: install a CUDA build"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, bf16: {torch.cuda.is_bf16_supported()}")
PY
COMMON=(-S "paths.data_root=$SHARED/data" -S "paths.frnet_checkpoint=$SHARED/weights/mobilefacenet_casia_112x96.ckpt"
        -S "paths.work_dir=$WORK"
        -S "data.datasets.train.sources=[{name: lfw, root: lfw/lfw-deepfunneled}]"
        -S "data.datasets.train.landmarks_file=lfw/reference_landmarks.txt" -S "data.datasets.train.limit=2000"
        -S "align.workers=4")
t0=$(date +%s)
"$PY" -m lrface.cli "${COMMON[@]}" align --dataset train >/dev/null
"$PY" -m lrface.cli "${COMMON[@]}" shards --dataset train >/dev/null
echo "data ready in $(( $(date +%s) - t0 )) s"
timeout 420 "$PY" -m lrface.cli "${COMMON[@]}" \
  -S train.use_gpu=true -S train.num_workers=1 -S train.threads_per_worker=8 -S train.batch_size=256 \
  -S train.steps=300 -S train.log_every=50 -S train.validate_every=150 -S train.checkpoint_every=150 \
  -S train.val_max_faces=512 -S train.register=false -S frnet.precision=auto \
  -S "train.sweep={\"0\": srnet-init, \"0.5\": srnet-init}" \
  train --alpha 0.5 --name gpu-check | tee "$WORK/train.json"
# the torch MTCNN on CUDA gives the CPU's faces (lrface.data.detector; skipped on CPU-only machines)
timeout 60 "$PY" -m pytest -q -n 0 -p no:cacheprovider tests/test_detector.py -k cuda_matches_cpu -rA | tail -3
echo "total $(( $(date +%s) - t0 )) s; work dir $WORK"

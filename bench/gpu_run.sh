#!/usr/bin/env bash
# The GPU training benchmark in one command, for a machine with JAX (its CUDA build) and
# Python but no TensorFlow and no network (bench/gpu_train.py; under 8 minutes on one GPU):
#
#   bench/gpu_run.sh --download            # beforehand, on a machine that reaches PyPI:
#                                          # fetch the wheels below into bench/wheels/
#   bench/gpu_run.sh PETS_DEV_DIR          # on the GPU machine: install them, run, record
#   bench/gpu_run.sh --quick PETS_DEV_DIR  # a CPU smoke run of the same (tiny sizes)
#
# Copy this repository (with bench/wheels/) and the pets-dev folder (class subfolders of
# photos) to the GPU machine. --download fetches wheels for this machine's Python; for
# another one set PYTHON_VERSION (e.g. 3.12) and PLATFORM (default manylinux2014_x86_64).
# Figures go to bench/results.json ("gpu_train") and are printed; extra arguments after the
# folder go to bench/gpu_train.py (e.g. --images 600 --batch 128).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
WHEELS_DIR=bench/wheels
# What the engine's training path imports beyond JAX (and jaxlib, ml_dtypes, numpy, scipy,
# which JAX brings), with their own requirements (found by running the --quick setting with
# TensorFlow unimportable): Keras, the engine's data stack, the JPEG checks of the import,
# and scikit-learn for the run's report.
WHEELS=(keras optree namex absl-py rich markdown-it-py mdurl pygments h5py packaging
        pandas python-dateutil six pillow simplejpeg psutil scikit-learn joblib
        threadpoolctl narwhals)

if [[ "${1:-}" == "--download" ]]; then
    mkdir -p "$WHEELS_DIR"
    target=()
    if [[ -n "${PYTHON_VERSION:-}" ]]; then
        target=(--python-version "$PYTHON_VERSION" --platform "${PLATFORM:-manylinux2014_x86_64}"
                --only-binary=:all:)
    fi
    "$PYTHON" -m pip download --dest "$WHEELS_DIR" "${target[@]}" "${WHEELS[@]}"
    echo "Wheels in $WHEELS_DIR: copy the repository with it to the GPU machine."
    exit 0
fi

quick=()
if [[ "${1:-}" == "--quick" ]]; then
    quick=(--quick)
    shift
fi
photos="${1:?usage: bench/gpu_run.sh [--quick] PETS_DEV_DIR [gpu_train options] (or --download)}"
shift

if ! "$PYTHON" -c "import jax" 2>/dev/null; then
    echo "JAX is not installed: pip install 'jax[cuda12]' (or jax for a CPU run)." >&2
    exit 1
fi
missing=$("$PYTHON" - "${WHEELS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for name in sys.argv[1:]:
    try:
        version(name)
    except PackageNotFoundError:
        print(name)
EOF
)
if [[ -n "$missing" ]]; then
    if [[ ! -d "$WHEELS_DIR" ]]; then
        echo "Missing: $(echo $missing). Fetch them with bench/gpu_run.sh --download on a" \
             "machine with PyPI and copy $WHEELS_DIR/ here." >&2
        exit 1
    fi
    "$PYTHON" -m pip install --no-index --find-links "$WHEELS_DIR" $missing
fi

export KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # the card's memory grows as needed
"$PYTHON" -c "import jax; print('JAX', jax.__version__, 'devices:', jax.devices())"
timeout 480 "$PYTHON" -m bench.gpu_train --photos "$photos" "${quick[@]}" "$@"

"""``python -m engine export``: export a run's model, verified in a fresh process."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from engine.serving.export import ExportFormat, export_model
from engine.runs import find_run_dir
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a run's model as .keras, SavedModel, TFLite, ONNX or a bundle "
                       "that runs without this app (parity-checked)",
        description="Writes <run>/exports/<name>/ and <name>.zip after reloading the export in "
                    "a new process and comparing its predictions with the trained model. "
                    "'bundle': model.onnx, model.tflite, labels.txt, preprocessing.json, "
                    "predict.py (numpy, Pillow and onnxruntime only) and a README with a "
                    "model card.")
    parser.add_argument("--run", required=True, help="run folder, or a run id of --workspace")
    parser.add_argument("--workspace", help="workspace for a run id")
    parser.add_argument("--format", required=True, choices=[item.value for item in ExportFormat])
    parser.add_argument("--quantize", action="store_true",
                        help="TFLite: dynamic-range quantisation (int8 weights, ~4x smaller)")
    parser.add_argument("--unsure-below", type=float, default=None, metavar="P",
                        help="bundle: its predict.py flags 'unsure' below this probability "
                             "(0..1; default: the run's level from its validation photos, "
                             "as the Predict page starts from; 0: never)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    run_dir = Path(arguments.run).expanduser()
    if not run_dir.is_dir():
        run_dir = find_run_dir(open_workspace(arguments.workspace), arguments.run)
    result = export_model(run_dir, arguments.format, quantize=arguments.quantize,
                          unsure_below=arguments.unsure_below)
    if arguments.json:
        print(json.dumps({key: (str(value) if isinstance(value, Path) else value)
                          for key, value in asdict(result).items()}))
        return 0
    print(f"Exported {result.format}{' (quantised)' if result.is_quantized else ''}: "
          f"{result.model_path}")
    print(f"  bundle: {result.bundle_path} ({result.size_bytes / 1e6:.2f} MB model)")
    print(f"  reloaded in a new process: max |probability difference| "
          f"{result.max_abs_difference:.2e} on {result.num_sample_images} images "
          f"(allowed {result.tolerance:g}); same class on {result.same_prediction_fraction:.0%}")
    print(f"  CPU inference: {result.ms_per_image:.2f} ms/image (batch of 1)")
    return 0

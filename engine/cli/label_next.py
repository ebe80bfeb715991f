"""``python -m engine label-next``: the next page to label by confirming, as JSON.

Computes what is missing (features of new photos), refits the model on the labels as they are
and prints ``{"unlabeled": N, "classes": [...], "mode": ..., "class_name": ..., "images":
[{"path", "suggested", "confidence"}], "seconds": S}`` (``path`` as imported; ``suggested``
null on cold-start pages; ``seconds`` = refit and choice). Labels go back with
``python -m engine label --csv``.
"""
from __future__ import annotations

import argparse
import json

from engine.labeling.confirming import LEAST_CERTAIN, PAGE_SIZE, SUREST, ensure_features, next_page
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label-next", help="the next page of photos to label by confirming",
        description="Refit the labeling model on the current labels and print the next page "
                    "of unlabeled photos with the model's suggestion.")
    parser.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")
    parser.add_argument("--weights", default=None,
                        help="'imagenet', 'none' or a weights file (default: the Train page's, "
                             "else the smallest backbone with weights on this computer)")
    parser.add_argument("--variant", default=None, help="backbone, e.g. MobileNetV2-0.5")
    parser.add_argument("--image-size", type=int, default=None, help="input side in pixels")
    parser.add_argument("--page", type=int, default=PAGE_SIZE, help="photos per page (default 48)")
    parser.add_argument("--least-certain", action="store_true",
                        help="the photos the model is least sure about instead of one class")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    workspace = open_workspace(arguments.workspace)
    matrix = ensure_features(workspace, arguments.variant, arguments.weights, arguments.image_size)
    page = next_page(workspace, matrix, page_size=max(1, arguments.page),
                     mode=LEAST_CERTAIN if arguments.least_certain else SUREST)
    result = {"unlabeled": page.num_unlabeled, "classes": page.classes, "mode": page.mode,
              "class_name": page.class_name,
              "images": [{"path": p.source_path, "suggested": p.suggested,
                          "confidence": None if p.confidence is None else round(p.confidence, 4)}
                         for p in page.photos],
              "seconds": round(page.seconds, 4)}
    if arguments.json:
        print(json.dumps(result))
        return 0
    title = f"surest '{page.class_name}'" if page.class_name else page.mode.replace("_", " ")
    print(f"{page.num_unlabeled} unlabeled; next page ({title}, {len(page.photos)} photos, "
          f"{page.seconds:.2f} s):")
    for photo in page.photos:
        guess = f"{photo.suggested} {photo.confidence:.0%}" if photo.suggested else "-"
        print(f"  {photo.source_path}  {guess}")
    return 0

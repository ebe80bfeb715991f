"""``python -m engine split``: give images their train/val/test split and print the counts."""
from __future__ import annotations

import argparse
import json
import sys

from engine.labeling.export import export_dataset_csv
from engine.errors import ConfigError, DatasetError
from engine.labeling.folder_split import carve_split, given_split
from engine.labeling.split import (SplitConfig, assign_splits, check_split, load_split_config,
                                   set_test_locked, split_counts, split_summary)
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "split", help="split labeled images into train/val/test (stratified, seeded, stable)",
        description="Give every labeled image without a split one (or all of them with "
                    "--resplit), stratified by class, keeping duplicates together. A split "
                    "given by the imported folders (train/, val/, test/) is kept unchanged "
                    "unless --resplit.")
    parser.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")
    parser.add_argument("--ratios", help="train,val,test shares, e.g. 0.8,0.1,0.1 or 80,10,10 "
                                         "(default: the workspace's saved ratios, else 0.8,0.1,0.1)")
    parser.add_argument("--seed", type=int, help="seed of the draw (default: the saved seed, else 0)")
    parser.add_argument("--resplit", action="store_true",
                        help="draw the split again for all images (a locked test split is "
                             "kept); this drops a split given by the imported folders")
    parser.add_argument("--carve", metavar="SPLIT:SHARE",
                        help="carve a split the folders did not give out of train only, e.g. "
                             "test:0.1 (stratified, seeded, duplicates kept together)")
    parser.add_argument("--lock-test", choices=("on", "off"),
                        help="lock the test split (re-splits keep it) or unlock it")
    parser.add_argument("--json", action="store_true",
                        help='print {"counts": {class: {"train": n, "val": n, "test": n}}}')
    parser.add_argument("--csv", metavar="OUT", help="write path,label,split for every image")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    workspace = open_workspace(arguments.workspace)
    saved = load_split_config(workspace)
    seed = saved.seed if arguments.seed is None else arguments.seed
    if arguments.ratios:
        config = SplitConfig.from_ratios(arguments.ratios, seed=seed)
    else:
        config = SplitConfig(saved.train, saved.val, saved.test, seed=seed)
    if arguments.lock_test:
        set_test_locked(workspace, arguments.lock_test == "on")
    summary = assign_splits(workspace, config, resplit=arguments.resplit)
    if arguments.carve:
        target, _, share = arguments.carve.partition(":")
        try:
            share_value = float(share or 0.1)
        except ValueError:
            raise ConfigError(f"--carve takes SPLIT:SHARE, for example test:0.1; got "
                              f"'{arguments.carve}'.") from None
        carve_split(workspace, target.strip().lower(), share_value, seed)
        summary = split_summary(workspace)
    given = given_split(workspace)
    try:
        check_split(workspace, config)
    except DatasetError as err:  # the split is stored; training would refuse it, so say why
        print(f"warning: {err.user_message}", file=sys.stderr)
    if arguments.csv:
        export_dataset_csv(workspace, arguments.csv)
    if arguments.json:
        print(json.dumps({"counts": split_counts(summary), "kept_folder_split": given is not None,
                          "missing": list(given.missing) if given else []}, indent=2))
    else:
        if given is not None:
            print("Kept the split given by the folders ("
                  + ", ".join(f"{name} {count}" for name, count in given.counts.items()) + ")"
                  + (f"; no {' or '.join(given.missing)} split: add one with --carve "
                     f"{given.missing[0]}:0.1" if given.missing else "") + ".")
        print(f"Split {summary.attrs.get('num_assigned', 0)} images "
              f"(ratios {config.train:g}/{config.val:g}/{config.test:g}, seed {config.seed}).")
        print(summary.to_string(index=False) if len(summary) else "No labeled images yet.")
        if arguments.csv:
            print(f"Wrote {arguments.csv}")
    return 0

"""The training-curves figure shared by the Train and Results pages."""
from __future__ import annotations

import pandas as pd

from ui.charts import curves_figure

CURVES = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.9, 0.7, 0.6],
                       "accuracy": [0.5, 0.6, 0.7], "val_loss": [0.8, 0.7, 0.75],
                       "val_accuracy": [0.55, 0.65, 0.6]})


def _legend(figure) -> list[str]:
    return [trace.name for trace in figure.data if trace.showlegend is not False]


def test_one_best_epoch_shared_by_both_curves_is_listed_once():
    figure = curves_figure(CURVES, {"val_loss": 2, "val_accuracy": 2})
    stars = [trace for trace in figure.data if trace.name == "best epoch (2)"]
    assert len(stars) == 2                                   # a star on each chart
    assert _legend(figure) == ["training", "validation", "best epoch (2)"]


def test_two_best_epochs_are_both_listed():
    figure = curves_figure(CURVES, {"val_loss": 2, "val_accuracy": 1})
    assert _legend(figure) == ["training", "validation", "best epoch (2)", "best epoch (1)"]

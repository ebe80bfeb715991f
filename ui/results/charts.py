"""Plotly figures only the Results page draws (errors per class, reliability), built from
engine.results.evaluation tables (no Streamlit). The confusion heatmap and the training curves
are shared with other pages: :mod:`ui.charts`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.charts import BEST_COLOUR

ERROR_COLOUR = "#d62728"


def errors_bar(errors: pd.DataFrame) -> go.Figure:
    """Bar chart of misclassified images per true class (engine.results.evaluation.errors_by_class)."""
    figure = go.Figure(go.Bar(
        x=errors["class"], y=errors["num_errors"],
        customdata=np.stack([errors["num_images"], errors["error_rate"]], axis=-1),
        hovertemplate="%{x}: %{y} of %{customdata[0]} wrong (%{customdata[1]:.0%})<extra></extra>",
        marker_color=ERROR_COLOUR))
    figure.update_layout(yaxis_title="Misclassified images", xaxis_title="True class",
                         height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def reliability_figure(bins: pd.DataFrame) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal."""
    used = bins[bins["num_images"] > 0]
    centres = (used["bin_lower"] + used["bin_upper"]) / 2
    figure = go.Figure()
    figure.add_trace(go.Bar(x=centres, y=used["accuracy"], width=(used["bin_upper"] - used["bin_lower"]) * 0.95,
                            name="accuracy", marker_color=BEST_COLOUR,
                            customdata=np.stack([used["num_images"], used["mean_confidence"]], -1),
                            hovertemplate="confidence %{customdata[1]:.2f}: accuracy %{y:.2f} "
                                          "(%{customdata[0]} images)<extra></extra>"))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                                line={"dash": "dash", "color": "grey"}))
    figure.update_layout(xaxis={"title": "Confidence", "range": [0, 1]},
                         yaxis={"title": "Accuracy", "range": [0, 1]}, height=340,
                         margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure

"""Plotly figures of the Results page, built from engine.results.evaluation tables (no Streamlit).

The confusion matrix is a heatmap with an invisible marker at every cell centre: Plotly
heatmap traces report no point selections to ``st.plotly_chart(on_select=...)``
(streamlit#8760, plotly.js#7685), scatter markers do, so choosing a cell selects its marker
and :func:`selected_cell` reads the (true, predicted) pair from its customdata.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN_COLOUR, VAL_COLOUR, BEST_COLOUR = "#d62728", "#2ca02c", "#1f77b4"


def confusion_figure(counts: pd.DataFrame, normalized: pd.DataFrame,
                     show_normalized: bool) -> go.Figure:
    """Heatmap of a confusion matrix (rows true, columns predicted), every cell selectable."""
    names = [str(name) for name in counts.index]
    values = normalized if show_normalized else counts
    text = [[(f"{normalized.iloc[i, j]:.0%}<br>({counts.iloc[i, j]})" if show_normalized
              else f"{counts.iloc[i, j]}") for j in range(len(names))] for i in range(len(names))]
    figure = go.Figure(go.Heatmap(
        z=values.to_numpy(), x=names, y=names, text=text, texttemplate="%{text}",
        colorscale="Blues", showscale=False, hoverinfo="skip"))
    cells = [(t, p) for t in names for p in names]
    figure.add_trace(go.Scatter(
        x=[p for _, p in cells], y=[t for t, _ in cells], mode="markers",
        marker={"symbol": "square", "size": 40, "opacity": 0.01, "color": "#000"},
        customdata=[[t, p, int(counts.loc[t, p])] for t, p in cells],
        hovertemplate="true %{customdata[0]} → predicted %{customdata[1]}: "
                      "%{customdata[2]} image(s)<br>click to see them<extra></extra>",
        showlegend=False))
    figure.update_layout(
        xaxis={"title": "Predicted", "side": "bottom", "type": "category"},
        yaxis={"title": "True", "autorange": "reversed", "type": "category"},
        height=max(320, 60 * len(names) + 140), margin={"l": 10, "r": 10, "t": 30, "b": 10},
        clickmode="event+select", dragmode=False)
    return figure


def selected_cell(event: Any) -> tuple[str, str] | None:
    """The (true, predicted) pair of the first selected confusion cell, or None.

    Args:
        event: what ``st.plotly_chart(on_select="rerun")`` returns (or its session-state
            value): ``{"selection": {"points": [{"customdata": [true, predicted, n], "x":
            predicted, "y": true, ...}]}}``.
    """
    if not event:
        return None
    selection = event.get("selection") if isinstance(event, Mapping) else getattr(
        event, "selection", None)
    points = (selection or {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        if data and len(data) >= 2:
            return str(data[0]), str(data[1])
        if point.get("x") is not None and point.get("y") is not None:
            return str(point["y"]), str(point["x"])
    return None


def errors_bar(errors: pd.DataFrame) -> go.Figure:
    """Bar chart of misclassified images per true class (engine.results.evaluation.errors_by_class)."""
    figure = go.Figure(go.Bar(
        x=errors["class"], y=errors["num_errors"],
        customdata=np.stack([errors["num_images"], errors["error_rate"]], axis=-1),
        hovertemplate="%{x}: %{y} of %{customdata[0]} wrong (%{customdata[1]:.0%})<extra></extra>",
        marker_color="#d62728"))
    figure.update_layout(yaxis_title="Misclassified images", xaxis_title="True class",
                         height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def curves_figure(curves: pd.DataFrame, best: Mapping[str, int | None]) -> go.Figure:
    """The 000 seed's tr_plot: loss and accuracy, train vs validation, best epochs marked."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for column, (metric, best_key) in enumerate((("loss", "val_loss"),
                                                 ("accuracy", "val_accuracy")), 1):
        for name, colour, label in ((metric, TRAIN_COLOUR, "train"),
                                    (f"val_{metric}", VAL_COLOUR, "validation")):
            if name in curves:
                figure.add_trace(go.Scatter(x=curves["epoch"], y=curves[name], mode="lines+markers",
                                            name=f"{label} {metric}", line={"color": colour}),
                                 row=1, col=column)
        epoch = best.get(best_key)
        if epoch is not None and best_key in curves:
            value = curves.loc[curves["epoch"] == epoch, best_key].iloc[0]
            figure.add_trace(go.Scatter(
                x=[epoch], y=[value], mode="markers", name=f"best epoch = {epoch} ({best_key})",
                marker={"size": 14, "color": BEST_COLOUR, "symbol": "star"}), row=1, col=column)
    if "phase" in curves and curves["phase"].nunique() > 1:
        switch = curves.loc[curves["phase"] != curves["phase"].iloc[0], "epoch"].min()
        for column in (1, 2):
            figure.add_vline(x=switch - 0.5, line_dash="dot", line_color="grey", row=1, col=column)
    figure.update_xaxes(title_text="Epoch", dtick=1 if len(curves) <= 30 else None)
    figure.update_layout(height=340, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": -0.25})
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

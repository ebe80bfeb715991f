"""The figures two pages share, in one colour scheme: the confusion heatmap (Results, Compare)
and the training curves (Train while a run trains, Results after). Plotly only, no Streamlit.

The confusion matrix is a heatmap with an invisible marker at every cell centre: Plotly
heatmap traces report no point selections to ``st.plotly_chart(on_select=...)``
(streamlit#8760, plotly.js#7685), scatter markers do, so choosing a cell selects its marker
and :func:`selected_cell` reads the (true, predicted) pair from its customdata.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# One scheme everywhere: training blue, validation orange, the best epoch a green star.
TRAIN_COLOUR, VAL_COLOUR, BEST_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c"
PHASE_LINE_COLOUR = "grey"


def confusion_counts_figure(counts: pd.DataFrame, title: str | None = None) -> go.Figure:
    """A confusion heatmap shaded by row share, each cell showing count and share (no
    selection): the Compare page's side-by-side matrices."""
    totals = counts.sum(axis=1).replace(0, 1)
    figure = confusion_figure(counts, counts.div(totals, axis=0), show_normalized=True,
                              selectable=False)
    if title:
        figure.update_layout(title=title, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return figure


def confusion_figure(counts: pd.DataFrame, normalized: pd.DataFrame, show_normalized: bool,
                     selectable: bool = True) -> go.Figure:
    """Heatmap of a confusion matrix (rows true, columns predicted), every cell selectable
    (``selectable``) so the page can open its images."""
    names = [str(name) for name in counts.index]
    values = normalized if show_normalized else counts
    text = [[(f"{normalized.iloc[i, j]:.0%}<br>({counts.iloc[i, j]})" if show_normalized
              else f"{counts.iloc[i, j]}") for j in range(len(names))] for i in range(len(names))]
    figure = go.Figure(go.Heatmap(
        z=values.to_numpy(), x=names, y=names, text=text, texttemplate="%{text}",
        colorscale="Blues", zmin=0, zmax=1 if show_normalized else None, showscale=False,
        hoverinfo="skip" if selectable else None))
    cells = [(t, p) for t in names for p in names] if selectable else []
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


def curves_figure(curves: pd.DataFrame, best: Mapping[str, int | None],
                  fine_tune_from_epoch: int | None = None) -> go.Figure:
    """The 000 seed's tr_plot: loss and accuracy (%) per epoch, training vs validation.

    Args:
        curves: columns epoch (1-based), loss, accuracy, val_loss, val_accuracy (accuracy
            0..1) and optionally phase.
        best: {"val_loss": epoch, "val_accuracy": epoch}, each marked with a star (None: none).
        fine_tune_from_epoch: the first fine-tuning epoch, marked with a dotted line; default
            where ``phase`` changes.
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy (%)"))
    if fine_tune_from_epoch is None and "phase" in curves and curves["phase"].nunique() > 1:
        fine_tune_from_epoch = int(curves.loc[curves["phase"] != curves["phase"].iloc[0],
                                              "epoch"].min())
    starred: set[int] = set()      # one legend entry per best epoch, even when both share it
    for column, metric, scale in ((1, "loss", 1.0), (2, "accuracy", 100.0)):
        for name, label, colour in ((metric, "training", TRAIN_COLOUR),
                                    (f"val_{metric}", "validation", VAL_COLOUR)):
            if name in curves:
                figure.add_trace(go.Scatter(
                    x=curves["epoch"], y=curves[name] * scale, mode="lines+markers", name=label,
                    line={"color": colour}, legendgroup=label, showlegend=column == 1),
                    row=1, col=column)
        epoch = best.get(f"val_{metric}")
        if epoch is not None and f"val_{metric}" in curves and (curves["epoch"] == epoch).any():
            value = curves.loc[curves["epoch"] == epoch, f"val_{metric}"].iloc[0] * scale
            figure.add_trace(go.Scatter(
                x=[epoch], y=[value], mode="markers", name=f"best epoch ({epoch})",
                marker={"symbol": "star", "size": 16, "color": BEST_COLOUR},
                legendgroup=f"best-{epoch}", showlegend=epoch not in starred), row=1, col=column)
            starred.add(epoch)
        if fine_tune_from_epoch is not None:
            figure.add_vline(x=fine_tune_from_epoch - 0.5, line_dash="dot",
                             line_color=PHASE_LINE_COLOUR, row=1, col=column)
    figure.update_xaxes(title_text="Epoch", dtick=1 if len(curves) <= 20 else None)
    figure.update_layout(height=330, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": -0.25})
    return figure

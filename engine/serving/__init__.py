"""Stage 5: using trained models (predict, ensemble, export, compare)."""

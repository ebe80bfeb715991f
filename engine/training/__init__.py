"""Stage 3: training configuration, models and the two-phase training loop."""

"""Stage 4: evaluating a finished run (metrics, mistakes, label issues, Grad-CAM)."""

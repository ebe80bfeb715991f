"""Stage 2: classes, labels, the split and the dataset a run trains on."""

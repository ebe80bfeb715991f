"""Stage 1: bringing photos in and checking them (import, scan, duplicates, quarantine)."""

"""Data of commerce.regions: gbt2260.tsv and the script that generates it (build.py, run by hand)."""

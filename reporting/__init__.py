"""Looking at a finished run: the dataset report (report.py) and exports for other trainers (export.py)."""

"""How a job runs: its arguments, its Spark session (Glue's or a local one), its
progress lines, its report and the workflow run it belongs to.

Imports from `compute`, `store` and itself only.
"""

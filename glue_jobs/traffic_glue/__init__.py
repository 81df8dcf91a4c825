"""traffic-glue: raw Flemish traffic loop readings to per-location minute indicators.

The package ships to AWS Glue with `--extra-py-files`; every module but `glue` runs
unchanged on plain PySpark.
"""

"""The jobs: the transform, its dry run, the daily summary, the table maintenance and the
configuration fetch. Each one's script in `glue_jobs/` is a thin entry point to it.
"""

"""Reading and writing: the raw landing, the configuration files, the quarantine and
the tables the jobs write (Iceberg), locally and on S3.

Imports from `compute` and from itself only.
"""

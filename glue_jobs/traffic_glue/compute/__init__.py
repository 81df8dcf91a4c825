"""The numbers: what a run computes from readings and the configuration (docs/SEMANTICS.md).

Pure computation on DataFrames and plain values. Nothing here reads or writes a file or
a table, knows a job's arguments or Glue: every module imports only from this package
(tests/test_layers.py holds it to that).
"""

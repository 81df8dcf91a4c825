"""The two modes a run computes in (`--semantics`, docs/SEMANTICS.md): `athena`, the
first version's numbers as they were, and `corrected`."""

ATHENA = "athena"
CORRECTED = "corrected"
SEMANTICS = (ATHENA, CORRECTED)

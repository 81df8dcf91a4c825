"""The real network (tests/fixtures/network): its configuration and its one real minute
of the measurement feed, turned into raw readings as Firehose lands them."""

from __future__ import annotations

import datetime as dt
import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

from traffic_glue.compute import schema as S

FIXTURES = Path(__file__).parent / "fixtures" / "network"
CONFIGURATION = FIXTURES / "miv-config-2017-05-18.xml.gz"
REAL_MINUTE = FIXTURES / "miv-verkeersdata-2017-04-27T1438.xml.gz"
REAL_MINUTE_DAY = dt.date(2017, 4, 27)  # 14:38 +01:00 is 13:38 UTC


def configured_lanes() -> dict[int, dict]:
    """The configuration's lanes by `unieke_id`, as text (read with the standard library,
    apart from the job's parser)."""
    root = ET.parse(gzip.open(CONFIGURATION)).getroot()
    return {
        int(point.get("unieke_id")): {child.tag: (child.text or "").strip() for child in point}
        for point in root.iter("meetpunt")
    }


def _int(element, path: str) -> int | None:
    found = element.find(path)
    return None if found is None or found.text is None else int(found.text)


def real_minute_readings() -> list[dict]:
    """The real minute as raw readings (`factories.raw_reading`'s shape)."""
    root = ET.parse(gzip.open(REAL_MINUTE)).getroot()
    rows = []
    for point in root.iter("meetpunt"):
        observed = dt.datetime.fromisoformat(point.findtext("tijd_waarneming"))
        row = {name: None for name in S.RAW_COLUMNS}
        row.update({
            S.LANE_NAME: point.get("beschrijvende_id"),
            S.LANE_ID: int(point.get("unieke_id")),
            S.UNIT_ID: _int(point, "lve_nr"),
            S.OBSERVED_AT: int(observed.timestamp()),
            S.MODIFIED_AT: point.findtext("tijd_laatst_gewijzigd"),
            S.PUBLISHED: _int(point, "actueel_publicatie"),
            S.AVAILABLE: _int(point, "beschikbaar"),
            S.DEFECT: _int(point, "defect"),
            S.VALID: _int(point, "geldig"),
            S.OCCUPANCY: _int(point, "rekendata/bezettingsgraad"),
            S.AVAILABILITY: _int(point, "rekendata/beschikbaarheidsgraad"),
            S.UNREST: _int(point, "rekendata/onrustigheid"),
        })
        for data in point.iter("meetdata"):
            k = int(data.get("klasse_id"))
            row[S.intensity(k)] = _int(data, "verkeersintensiteit")
            row[S.arithmetic_speed(k)] = _int(data, "voertuigsnelheid_rekenkundig")
            row[S.harmonic_speed(k)] = _int(data, "voertuigsnelheid_harmonisch")
        rows.append(row)
    return rows


def documented_group(kind: str) -> str | None:
    """The location group of a `Rijstrook`, by docs/SEMANTICS.md's table (written apart
    from `configuration.lane_group`)."""
    letters = kind.rstrip("0123456789")
    if letters == "R":
        return "main" if int(kind[1:]) >= 10 else "merge"
    return {"TR": None, "S": "main"}.get(letters, letters)


def documented_key(lane: dict) -> tuple | None:
    """A configured lane's (`configured_lanes`) location as (road, point, group)."""
    group = documented_group(lane["Rijstrook"])
    if group is None:
        return None
    point = lane.get("Kmp_Rsys") or (lane["lengtegraad_EPSG_4326"], lane["breedtegraad_EPSG_4326"])
    return lane["Ident_8"], point, group

"""The day's pictures: files, page sections, axis labels, totals and ordering, read back
from what `render_day` wrote (the SVG keeps its text as text); the locations' names and
the map (buckets, what is placed and what is only listed), worked by hand."""

import datetime as dt
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from tools import pictures

DAY = dt.date(2024, 6, 11)  # summer: Brussels is UTC+2
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NETWORK_CONFIGURATION = Path(__file__).parent / "fixtures" / "network" / "miv-config-2017-05-18.xml.gz"
# Ids that no hour, count or speed on the page can be mistaken for.
MOST, SECOND, TIED, CALM = 9202, 9101, 9303, 9404


def _row(location, hour, jam=0, long_jam=0, mean=100.0, p15=80.0, day=DAY):
    return {"uniqueid": location, "day": day, "hour": hour, "local_hour": (hour + 2) % 24,
            "minutes_measured": 60, "jam_minutes": jam, "long_jam_minutes": long_jam,
            "mean_speed": mean, "p15_speed": p15, "vehicles_class2": 10, "vehicles_class3": 2,
            "vehicles_class4": 1, "vehicles_class5": 1, "worst_avgspeed20": p15}


def _rows():
    jams = {(MOST, 5): (40, 30), (MOST, 6): (30, 20), (SECOND, 16): (25, 0),
            (SECOND, 17): (20, 0), (TIED, 7): (45, 40)}
    rows = []
    for location in (MOST, SECOND, TIED, CALM):
        for hour in range(24):
            if location == MOST and hour in (1, 2):
                continue  # not measured: no row
            jam, long_jam = jams.get((location, hour), (0, 0))
            slow = jam > 0
            rows.append(_row(location, hour, jam, long_jam, mean=35.0 if slow else 100.0,
                             p15=20.0 if slow else 80.0))
    for row in rows:
        if row["uniqueid"] == TIED and row["hour"] in (2, 3, 4):
            row["mean_speed"] = row["p15_speed"] = row["worst_avgspeed20"] = None
    # Another day's row is not part of this day's pictures.
    rows.append(_row(CALM, 8, jam=60, long_jam=60, day=DAY + dt.timedelta(days=1)))
    return rows


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("pictures")
    path = pictures.render_day(_rows(), DAY, out)
    return out, path, path.read_text(encoding="utf-8")


def _section(text, heading):
    start = text.index(f"<h2>{heading}</h2>")
    following = text.find("<h2>", start + 1)
    return text[start:following if following >= 0 else len(text)]


def _svg_labels(fragment):
    """The text of every SVG text element, in document order."""
    return re.findall(r"<text[^>]*>([^<]*)</text>", fragment)


def _svg_labels_top_down(fragment):
    """The text of the SVG text elements placed by x and y (tick labels are), top first."""
    placed = re.findall(r'<text[^>]*\sy="([-\d.]+)"[^>]*>([^<]*)</text>', fragment)
    return [label for _, label in sorted((float(y), label) for y, label in placed)]


def test_files_exist_and_the_pictures_are_pngs(page):
    out, path, _ = page
    assert path == out / f"traffic_{DAY}.html"
    for name in (f"jam_heatmap_{DAY}.png", f"speed_profile_{DAY}.png", f"jam_map_{DAY}.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_page_has_its_sections_axis_labels_and_links(page):
    _, _, text = page
    assert re.findall(r"<h2>([^<]*)</h2>", text) == [
        "Totals", "Most jammed locations", "Map of jam minutes", "Jam minutes per hour",
        "Speed profile"]
    heatmap = set(_svg_labels(_section(text, "Jam minutes per hour")))
    profile = set(_svg_labels(_section(text, "Speed profile")))
    assert {"hour (UTC)", "hour (Brussels)", "location", "jam minutes per hour"} <= heatmap
    assert {"hour (UTC)", "hour (Brussels)", "speed (km/h)"} <= profile
    # Hours as integers, both clocks: UTC 00..23 below, Brussels (UTC+2 in June) above.
    assert {f"{h:02d}" for h in range(24)} <= heatmap
    assert f'href="jam_heatmap_{DAY}.png"' in text and f'href="speed_profile_{DAY}.png"' in text


def test_page_is_self_contained(page):
    _, _, text = page
    for external in ("<script", 'src="http', "url(http", "@import", "<metadata"):
        assert external not in text
    # The one link: an empty icon in the page itself, so no request for /favicon.ico.
    assert re.findall(r"<link[^>]*>", text) == ['<link rel="icon" href="data:,">']
    # Two inline SVGs in one page: no id twice, or a clip path or marker would resolve
    # to the other figure's.
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids)) > 0


def test_totals_are_the_days_sums(page):
    _, _, text = page
    totals = dict(re.findall(r"<tr><th>([^<]*)</th><td[^>]*>([^<]*)</td></tr>",
                             _section(text, "Totals")))
    day_rows = [r for r in _rows() if r["day"] == DAY]
    assert sum(r["jam_minutes"] for r in day_rows) == 160  # 40 + 30 + 25 + 20 + 45
    assert totals == {
        "locations measured": "4",
        "minutes measured (all locations)": "5,640",  # (4 * 24 - 2) hours of 60 minutes
        "jam minutes": "160",
        "long jam minutes": "90",  # 30 + 20 + 40
        "vehicles, class 2": "940",  # 94 rows of 10
        "vehicles, class 3": "188",
        "vehicles, class 4": "94",
        "vehicles, class 5": "94",
        # Without names, an id is its own name.
        "most jammed location": f"location {MOST} (id {MOST}, 70 jam minutes)",
    }


def test_heatmap_lists_the_most_jammed_first_ties_by_id(page):
    _, _, text = page
    ids = {f"location {location}" for location in (MOST, SECOND, TIED, CALM)}
    rows = [label for label in _svg_labels_top_down(_section(text, "Jam minutes per hour"))
            if label in ids]
    # Top to bottom; a section without jam minutes has no row.
    assert rows == [f"location {MOST}", f"location {SECOND}", f"location {TIED}"]


def test_top_limits_the_heatmap_rows(tmp_path):
    text = pictures.render_day(_rows(), DAY, tmp_path, top=2).read_text(encoding="utf-8")
    labels = set(_svg_labels(_section(text, "Jam minutes per hour")))
    assert {f"location {MOST}", f"location {SECOND}"} <= labels
    assert f"location {TIED}" not in labels


def test_speed_profile_leaves_gaps_for_hours_without_speed():
    day_rows = pictures.rows_of_day(_rows(), DAY)
    ranking = pictures.jam_ranking(day_rows)
    assert ranking == [(MOST, 70), (SECOND, 45), (TIED, 45)]
    fig = pictures.speed_profile(day_rows, ranking, pictures.brussels_hours(day_rows, DAY), DAY, {})
    panels = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert [ax.get_title(loc="left") for ax in panels] == [
        f"location {MOST}: 70 jam minutes", f"location {SECOND}: 45 jam minutes",
        f"location {TIED}: 45 jam minutes"]
    mean, p15 = (line.get_ydata() for line in panels[2].get_lines())
    assert np.isnan(mean[2:5]).all() and np.isnan(p15[2:5]).all()
    assert (mean[5], mean[7], p15[7]) == (100.0, 35.0, 20.0)
    # No row at all (MOST's hours 1 and 2) is a gap too.
    assert np.isnan(panels[0].get_lines()[0].get_ydata()[1:3]).all()


def test_brussels_hours_follow_the_table_and_the_clock_change():
    day_rows = pictures.rows_of_day(_rows(), DAY)
    assert pictures.brussels_hours(day_rows, DAY) == [(h + 2) % 24 for h in range(24)]
    # Without rows, the time zone's rule: on 2024-03-31 Brussels skips 02:00.
    assert pictures.brussels_hours({}, dt.date(2024, 3, 31))[:4] == [1, 3, 4, 5]


def test_a_day_without_rows_writes_a_page_that_says_so(tmp_path):
    path = pictures.render_day([_row(MOST, 5, day=DAY - dt.timedelta(days=1))], DAY, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert f"No summary rows for {DAY}" in text and "<svg" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"traffic_{DAY}.html"]


def test_a_day_without_jams_says_so_in_its_figures(tmp_path):
    rows = [_row(CALM, hour) for hour in range(24)]
    text = pictures.render_day(rows, DAY, tmp_path).read_text(encoding="utf-8")
    assert f"No jam minutes on {DAY} (UTC)." in text
    assert "<td class=\"n\">none</td>" in text
    assert (tmp_path / f"jam_heatmap_{DAY}.png").read_bytes().startswith(PNG_MAGIC)


def test_two_rows_for_one_location_hour_are_refused():
    with pytest.raises(ValueError, match=f"two summary rows for uniqueid {MOST}, {DAY} hour 5 UTC"):
        pictures.rows_of_day([_row(MOST, 5), _row(MOST, 5)], DAY)


# --- names and the map ----------------------------------------------------------------

RING_1, RING_2, TUNNEL, RING_3 = 5101, 5202, 5303, 5404
UNCONFIGURED, UNKNOWN = -957, 9999
NAMES = {
    RING_1: pictures.LocationInfo("Ring km 1.0, direction 1", 4.40, 51.20, "R9", 1, 1.0, True),
    RING_2: pictures.LocationInfo("Ring km 2.0, direction 1", 4.42, 51.21, "R9", 1, 2.0, True),
    TUNNEL: pictures.LocationInfo("Tunnel km 0.5, direction 2"),  # no position
    RING_3: pictures.LocationInfo("Ring km 3.0, direction 1", 4.44, 51.19, "R9", 1, 3.0, True),
}


def _map_rows():
    """RING_1 25 jam minutes, RING_3 measured without any, RING_2 not measured; TUNNEL
    (named, no position) 70, an unconfigured lane 5, an id nobody names 0."""
    jams = {(RING_1, 7): 10, (RING_1, 8): 15, (RING_3, 7): 0, (RING_3, 8): 0,
            (TUNNEL, 8): 60, (TUNNEL, 9): 10, (UNCONFIGURED, 7): 5, (UNKNOWN, 7): 0}
    return [_row(location, hour, jam) for (location, hour), jam in jams.items()]


def test_jam_minutes_of_a_day_fall_in_doubling_buckets():
    expected = {None: pictures.NO_DATA, 0: 0, 1: 1, 14: 1, 15: 2, 29: 2, 30: 3, 59: 3,
                60: 4, 119: 4, 120: 5, 239: 5, 240: 6, 1440: 6}
    assert {jam: pictures.map_bucket(jam) for jam in expected} == expected


def test_an_id_without_a_name_is_named_by_its_id():
    assert pictures.location_name(NAMES, RING_1) == "Ring km 1.0, direction 1"
    assert pictures.location_name(NAMES, UNKNOWN) == "location 9999"
    assert pictures.location_name(NAMES, UNCONFIGURED) == "lane 957 (not in the configuration)"


def test_the_map_places_named_positions_and_lists_the_rest():
    placed, unplaced = pictures.map_points(pictures.rows_of_day(_map_rows(), DAY), NAMES)
    # Least jammed first (drawn first): not measured, then 0, then 25 (bucket 15-29).
    assert [(p.location_id, p.jam_minutes, p.bucket) for p in placed] == [
        (RING_2, None, pictures.NO_DATA), (RING_3, 0, 0), (RING_1, 25, 2)]
    assert (placed[2].longitude, placed[2].latitude) == (4.40, 51.20)
    # Measured but not placeable, most jammed first: named without a position, an
    # unconfigured lane, an id nobody names.
    assert unplaced == [(TUNNEL, "Tunnel km 0.5, direction 2", 70),
                        (UNCONFIGURED, "lane 957 (not in the configuration)", 5),
                        (UNKNOWN, "location 9999", 0)]


def test_the_map_colours_measured_points_by_bucket_and_rings_the_unmeasured():
    fig = pictures.jam_map(pictures.rows_of_day(_map_rows(), DAY), NAMES, DAY)
    ax = fig.axes[0]
    unmeasured, measured = [c for c in ax.collections if len(c.get_offsets())]
    assert unmeasured.get_offsets().tolist() == [[4.42, 51.21]]
    assert len(unmeasured.get_facecolors()) == 0  # hollow: a ring
    assert measured.get_offsets().tolist() == [[4.44, 51.19], [4.40, 51.20]]
    measured.update_scalarmappable()
    assert np.allclose(measured.get_facecolors(),
                       [matplotlib.colors.to_rgba(pictures.MAP_ZERO_COLOUR),
                        pictures.MAP_COLOURS(2)])
    texts = {t.get_text() for t in ax.texts}
    # The one jammed placed location is named; Antwerpen (4.40E 51.22N) is inside the
    # map (4.40-4.44E padded to 0.3 degrees: 4.27-4.57E; 51.19-51.21N to 0.2: 51.10-51.30N),
    # Mechelen (51.03N) is not.
    assert {"1. Ring km 1.0, direction 1", "Antwerpen"} <= texts and "Mechelen" not in texts


def test_the_page_names_locations_and_lists_those_off_the_map(tmp_path):
    text = pictures.render_day(_map_rows(), DAY, tmp_path, names=NAMES).read_text(encoding="utf-8")
    the_map = _section(text, "Map of jam minutes")
    assert '<figure id="jam-map">' in the_map and "1. Ring km 1.0, direction 1" in _svg_labels(the_map)
    assert re.findall(r"<li>([^<]*)</li>", the_map) == [
        "Tunnel km 0.5, direction 2 (id 5303): 70 jam minutes",
        "lane 957 (not in the configuration) (id -957): 5 jam minutes",
        "location 9999 (id 9999): 0 jam minutes"]
    table = re.findall(r"<tr><td[^>]*>(\d+)</td><td>([^<]*)</td><td[^>]*>(-?\d+)</td>",
                       _section(text, "Most jammed locations"))
    assert table == [("1", "Tunnel km 0.5, direction 2", "5303"),
                     ("2", "Ring km 1.0, direction 1", "5101"),
                     ("3", "lane 957 (not in the configuration)", "-957")]
    heatmap = _svg_labels_top_down(_section(text, "Jam minutes per hour"))
    assert [label for label in heatmap if "direction" in label or "lane" in label] == [
        "Tunnel km 0.5, direction 2", "Ring km 1.0, direction 1",
        "lane 957 (not in the configuration)"]


def test_long_names_wrap_keeping_direction_and_number_together():
    assert pictures.wrapped("A14 km 94.7 (Parking Kruibeke), direction 1") == (
        "A14 km 94.7 (Parking Kruibeke), direction 1")  # 43 characters: one line
    assert pictures.wrapped("A4 km 6.3 (complex Jezus-Eik (2)), direction 1") == (
        "A4 km 6.3 (complex Jezus-Eik (2)),\ndirection 1")
    assert pictures.wrapped("R1 km 11.2 (Afrit Ring 2 Wilrijk - Gerard Le Grellel), direction 1, "
                            "merging and exit lanes") == (
        "R1 km 11.2 (Afrit Ring 2 Wilrijk - Gerard Le\nGrellel), direction 1, merging and exit lan…")


def test_roads_are_lines_through_main_carriageways_in_kilometre_order():
    info = pictures.LocationInfo
    names = {
        1: info("km 3", 4.40, 51.22, "R9", 1, 3.0, True),
        2: info("km 1", 4.40, 51.20, "R9", 1, 1.0, True),
        3: info("km 2", 4.40, 51.21, "R9", 1, 2.0, True),
        4: info("km 4", 4.40, 51.309, "R9", 1, 4.0, True),  # 0.089 deg = 9.9 km on: joined
        5: info("km 30", 4.40, 51.50, "R9", 1, 30.0, True),  # 21.2 km on: a line of its own, of one point
        6: info("other side", 4.41, 51.20, "R9", 2, 1.0, True),  # one point: no line
        7: info("exit lanes", 4.40, 51.205, "R9", 1, 1.5, False),  # not the carriageway
        8: info("no kilometre", 4.40, 51.215, "R9", 1, None, True),
    }
    assert pictures.road_lines(names) == [
        ("R9", [(4.40, 51.20), (4.40, 51.21), (4.40, 51.22), (4.40, 51.309)])]


def test_names_from_the_locations_table_take_each_ids_latest_row():
    utc = dt.timezone.utc
    common = {"road_name": "A1", "direction": 1, "lane_group": "main"}
    rows = [
        {"location_id": 1, "label": "new name", "valid_from": dt.datetime(2018, 1, 1, tzinfo=utc),
         "longitude": 4.1, "latitude": 51.1, "kilometre_point": 5.2, **common},
        {"location_id": 1, "label": "old name", "valid_from": dt.datetime(2017, 1, 1, tzinfo=utc),
         "longitude": 4.0, "latitude": 51.0, "kilometre_point": 5.0, **common},
        {"location_id": 2, "label": None, "valid_from": None, "longitude": None, "latitude": None,
         "road_name": None, "direction": None, "lane_group": "merge", "kilometre_point": None},
        {"location_id": 3, "label": "A1 ramp 0111 km 0.2", "valid_from": dt.datetime(2018, 1, 1),
         "longitude": 4.2, "latitude": 51.2, "road_name": "A1 ramp 0111", "direction": None,
         "lane_group": "main", "kilometre_point": 0.2},
    ]
    assert pictures.names_from_location_rows(rows) == {
        1: pictures.LocationInfo("new name", 4.1, 51.1, "A1", 1, 5.2, True),
        2: pictures.LocationInfo("location 2"),
        # A ramp has no direction: not a carriageway the map draws a road line through.
        3: pictures.LocationInfo("A1 ramp 0111 km 0.2", 4.2, 51.2, "A1 ramp 0111", None, 0.2, False),
    }


def test_names_from_a_configuration_file():
    from tools import report

    names = report.names_from_configuration(NETWORK_CONFIGURATION)
    assert len(names) == 2389
    kruibeke = names[398698145]
    assert kruibeke.label == "A14 km 94.7 (Parking Kruibeke), direction 1"
    assert kruibeke.main_carriageway and kruibeke.road_name == "A14" and kruibeke.direction == 1
    assert kruibeke.position is not None
    assert 4.2 < kruibeke.longitude < 4.4 and 51.1 < kruibeke.latitude < 51.3


def test_names_from_the_locations_table_read_by_pyiceberg(spark, tmp_path):
    """The table as Spark writes it (Iceberg, `_locations` in the curated folder), read
    back without Spark; a table without names (written before they were recorded) is
    refused, and beside the summary it gives no names, saying so."""
    from tools import report
    from traffic_glue.store import tables

    table = tables.path_table(spark, str(tmp_path / "curated" / "_locations"))
    spark.sql(f"""CREATE TABLE {table} (location_id int, label string, road string,
        road_name string, direction int, lane_group string, kilometre_point double,
        place string, longitude double, latitude double,
        lanes array<struct<unieke_id: int, beschrijvende_id: string, lane_type: string>>,
        valid_from timestamp, valid_to timestamp, configuration string) USING iceberg""")
    spark.sql(f"""INSERT INTO {table} VALUES
        (398698145, 'A14 km 94.7 (Parking Kruibeke), direction 1', 'A0140001', 'A14', 1, 'main',
         94.7, 'Parking Kruibeke', 4.2899, 51.1844, array(), TIMESTAMP '2017-05-18 00:00:00',
         NULL, 'miv-config-2017-05-18.xml.gz'),
        (398698145, 'an older name', 'A0140001', 'A14', 1, 'main', 94.7, 'Parking', 4.0, 51.0,
         array(named_struct('unieke_id', 957, 'beschrijvende_id', 'H101L10', 'lane_type', 'R10')),
         TIMESTAMP '2017-01-01 00:00:00', TIMESTAMP '2017-05-18 00:00:00', 'miv-config-2017-01-01.xml.gz')""")
    kruibeke = pictures.LocationInfo("A14 km 94.7 (Parking Kruibeke), direction 1", 4.2899, 51.1844,
                                     "A14", 1, 94.7, True)
    assert report.names_from_locations_table(tmp_path / "curated" / "_locations") == {398698145: kruibeke}
    assert report.names_beside(tmp_path / "daily_summary") == {398698145: kruibeke}

    old = tables.path_table(spark, str(tmp_path / "old" / "curated" / "_locations"))
    spark.sql(f"CREATE TABLE {old} (location_id int, lve_nr int) USING iceberg")
    said = []
    assert report.names_beside(tmp_path / "old" / "daily_summary", say=said.append) == {}
    assert said == [f"report: the locations table in {tmp_path / 'old' / 'curated' / '_locations'} "
                    "holds no names (no `label` column: written before names were recorded); give "
                    "--configuration a configuration file instead; the pictures name ids only"]

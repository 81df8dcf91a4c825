"""The day's pictures: files, page sections, axis labels, totals and ordering, read back
from what `render_day` wrote (the SVG keeps its text as text)."""

import datetime as dt
import re

import numpy as np
import pytest

from tools import pictures

DAY = dt.date(2024, 6, 11)  # summer: Brussels is UTC+2
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
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
    for name in (f"jam_heatmap_{DAY}.png", f"speed_profile_{DAY}.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_page_has_its_sections_axis_labels_and_links(page):
    _, _, text = page
    assert re.findall(r"<h2>([^<]*)</h2>", text) == ["Totals", "Jam minutes per hour", "Speed profile"]
    heatmap = set(_svg_labels(_section(text, "Jam minutes per hour")))
    profile = set(_svg_labels(_section(text, "Speed profile")))
    assert {"hour (UTC)", "hour (Brussels)", "location (uniqueid)", "jam minutes per hour"} <= heatmap
    assert {"hour (UTC)", "hour (Brussels)", "speed (km/h)"} <= profile
    # Hours as integers, both clocks: UTC 00..23 below, Brussels (UTC+2 in June) above.
    assert {f"{h:02d}" for h in range(24)} <= heatmap
    assert f'href="jam_heatmap_{DAY}.png"' in text and f'href="speed_profile_{DAY}.png"' in text


def test_page_is_self_contained(page):
    _, _, text = page
    for external in ("<script", "<link", 'src="http', "url(http", "@import", "<metadata"):
        assert external not in text
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
        "sections measured": "4",
        "minutes measured (all sections)": "5,640",  # (4 * 24 - 2) hours of 60 minutes
        "jam minutes": "160",
        "long jam minutes": "90",  # 30 + 20 + 40
        "vehicles, class 2": "940",  # 94 rows of 10
        "vehicles, class 3": "188",
        "vehicles, class 4": "94",
        "vehicles, class 5": "94",
        "most jammed section": f"{MOST} (70 jam minutes)",
    }


def test_heatmap_lists_the_most_jammed_first_ties_by_id(page):
    _, _, text = page
    ids = {str(location) for location in (MOST, SECOND, TIED, CALM)}
    rows = [label for label in _svg_labels_top_down(_section(text, "Jam minutes per hour"))
            if label in ids]
    # Top to bottom; a section without jam minutes has no row.
    assert rows == [str(MOST), str(SECOND), str(TIED)]


def test_top_limits_the_heatmap_rows(tmp_path):
    text = pictures.render_day(_rows(), DAY, tmp_path, top=2).read_text(encoding="utf-8")
    labels = set(_svg_labels(_section(text, "Jam minutes per hour")))
    assert {str(MOST), str(SECOND)} <= labels and str(TIED) not in labels


def test_speed_profile_leaves_gaps_for_hours_without_speed():
    day_rows = pictures.rows_of_day(_rows(), DAY)
    ranking = pictures.jam_ranking(day_rows)
    assert ranking == [(MOST, 70), (SECOND, 45), (TIED, 45)]
    fig = pictures.speed_profile(day_rows, ranking, pictures.brussels_hours(day_rows, DAY), DAY)
    panels = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert [ax.get_legend().get_title().get_text() for ax in panels] == [
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

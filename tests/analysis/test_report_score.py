"""``report.score`` on a case worked out by hand: three alerts, three known places, one unseen."""

import datetime as dt

import pytest
from shapely.geometry import box, mapping

from pipelines.analysis import report
from pipelines.analysis.rules import Alert

LAST = dt.date(2026, 7, 1)


def alert(outline):
    return Alert(alert_id="x", aoi="a", tile_id=str(outline.bounds), before_date=dt.date(2026, 6, 1),
                 before_scene="s1", first_detected=LAST, detected_scene="s2", detected_acquired=None,
                 labels_gained=("agriculture",), probability=0.9, confidence="low", confirmed_date=None,
                 status="active", retracted_date=None, last_judged=LAST, geometry=outline.wkb,
                 lon=outline.centroid.x, lat=outline.centroid.y, area_m2=1.0)


def place(outline, tag):
    return {"type": "Feature", "properties": {"tag": tag}, "geometry": mapping(outline)}


def test_score_on_a_hand_worked_case():
    places = [place(box(0.5, 0.5, 2, 2), "agriculture"),   # touched by two alerts
              place(box(20, 20, 21, 21), "slash_burn"),    # seen cloud-free on the last date, missed
              place(box(30, 30, 31, 31), "road")]          # cloudy on the last date: not visible
    found = [alert(box(0, 0, 1, 1)), alert(box(10, 10, 11, 11)), alert(box(1.5, 1.5, 2.5, 2.5))]
    # Tiles judged on the last date (the place at 30, 30 was cloudy then: not among them).
    seen = [box(0, 0, 2, 2).wkb, box(20, 20, 21, 21).wkb]
    scored = report.score(found, seen, places)
    assert {k: scored[k] for k in ("places", "alerts", "true_alerts", "visible_places")} == {
        "places": 3, "alerts": 3, "true_alerts": 2, "visible_places": 2}
    assert scored["precision"] == pytest.approx(2 / 3)  # 2 of 3 alerts touch a place
    assert scored["recall"] == pytest.approx(1 / 3)  # 1 of 3 places touched
    assert scored["recall_visible"] == pytest.approx(1 / 2)  # 1 of the 2 places seen cloud-free last
    assert scored["per_tag"] == {"agriculture": {"places": 1, "found": 1}, "road": {"places": 1, "found": 0},
                                 "slash_burn": {"places": 1, "found": 0}}


def test_score_with_no_alerts_and_no_places():
    scored = report.score([], [], [])
    assert (scored["precision"], scored["recall"], scored["recall_visible"], scored["per_tag"]) == (0.0, 0.0, 0.0, {})

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from planet_core import labels
from tests.conftest import TRAIN_CSV


def test_order_and_groups_are_the_projects_contract():
    assert labels.LABELS[0] == "agriculture" and labels.LABELS[-1] == "water"
    assert len(labels.LABELS) == 17 and labels.LABELS == tuple(sorted(labels.LABELS))
    assert labels.WEATHER_LABELS == ("clear", "cloudy", "haze", "partly_cloudy")
    assert set(labels.LAND_LABELS) | set(labels.WEATHER_LABELS) == set(labels.LABELS)


@given(st.sets(st.sampled_from(labels.LABELS)))
def test_encode_decode_round_trip(names):
    vector = labels.encode(names)
    assert vector.dtype == np.int64 and vector.sum() == len(names)
    assert labels.decode(vector) == sorted(names, key=labels.LABEL_INDEX.__getitem__)


def test_unknown_tag_names_tag_and_row():
    with pytest.raises(labels.LabelError, match=r"'forest'.*train_9"):
        labels.parse_tags("primary forest", row="train_9")
    with pytest.raises(labels.LabelError) as raised:
        labels.parse_tags("jungle")
    assert str(raised.value) == ("unknown tag 'jungle'; known tags: agriculture, artisinal_mine, bare_ground, "
                                 "blooming, blow_down, clear, cloudy, conventional_mine, cultivation, habitation, "
                                 "haze, partly_cloudy, primary, road, selective_logging, slash_burn, water")


def test_decode_rejects_wrong_length():
    with pytest.raises(labels.LabelError, match="17"):
        labels.decode([1, 0, 1])


def test_every_row_of_the_real_training_labels_parses_with_the_published_counts():
    rows = list(labels.read_kaggle_csv(TRAIN_CSV))
    assert len(rows) == 40_479
    # The published counts count tag occurrences; a few rows repeat a tag ("cultivation ... cultivation").
    counts = Counter(tag for line in TRAIN_CSV.read_text().splitlines()[1:] for tag in line.split(",")[1].split())
    assert counts["primary"] == 37_513 and counts["clear"] == 28_431 and counts["agriculture"] == 12_315
    assert counts["road"] == 8_071 and counts["water"] == 7_411 and counts["partly_cloudy"] == 7_261
    assert counts["cultivation"] == 4_547 and counts["habitation"] == 3_660 and counts["haze"] == 2_697
    assert counts["cloudy"] == 2_089 and counts["bare_ground"] == 862 and counts["selective_logging"] == 340
    assert counts["artisinal_mine"] == 339 and counts["blooming"] == 332 and counts["slash_burn"] == 209
    assert counts["blow_down"] == 101 and counts["conventional_mine"] == 100
    distinct = Counter(tag for _, tags in rows for tag in tags)  # multi-hot: a repeated tag counts once
    assert distinct["cultivation"] == 4_477 and distinct["blow_down"] == 98 and distinct["primary"] == 37_513
    weather = [sum(t in labels.WEATHER_LABELS for t in tags) for _, tags in rows]
    assert weather.count(1) == 40_478 and weather.count(0) == 1  # one chip has no weather label
    assert round(sum(counts.values()) / len(rows), 2) == 2.87


def test_kaggle_csv_round_trip(tmp_path):
    path = tmp_path / "labels.csv"
    labels.write_kaggle_csv(path, [("a", ["primary", "clear"]), ("b", ["cloudy"])])
    assert list(labels.read_kaggle_csv(path)) == [("a", ["clear", "primary"]), ("b", ["cloudy"])]
    path.write_text("image_name,tags\nx,primary jungle\n")
    with pytest.raises(labels.LabelError, match=r"'jungle'.*x \(line 2\)"):
        list(labels.read_kaggle_csv(path))


def test_an_image_listed_twice_is_refused_naming_both_lines(tmp_path):
    """Its chip was written twice, under two sets of labels; training found the repeat only later."""
    path = tmp_path / "labels.csv"
    path.write_text("image_name,tags\ntrain_0,haze primary\ntrain_1,clear primary water\ntrain_1,clear primary\n")
    with pytest.raises(labels.LabelError, match=r"train_1 is listed on lines 3 and 4; list each image once"):
        list(labels.read_kaggle_csv(path))


def test_kaggle_csv_with_other_columns_is_named_and_an_empty_tags_cell_is_no_labels(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,labels\ntrain_0,primary\n")
    with pytest.raises(labels.LabelError) as raised:
        list(labels.read_kaggle_csv(path))
    assert str(raised.value) == f"{path}: expected columns image_name,tags, got ['id', 'labels']"
    path.write_text("image_name,tags\ntrain_0,\ntrain_1,haze primary\n")
    assert list(labels.read_kaggle_csv(path)) == [("train_0", []), ("train_1", ["haze", "primary"])]


def test_encoding_an_unknown_label_names_it_and_the_known_ones():
    with pytest.raises(labels.LabelError) as raised:
        labels.encode(["primary", "jungle"])
    assert str(raised.value) == "unknown label 'jungle'; known labels: " + ", ".join(labels.LABELS)

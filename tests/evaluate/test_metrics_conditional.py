"""Conditional accuracy and Wilson intervals."""

from __future__ import annotations

import pytest

from radsynth.evaluate.metrics import ConditionalAccuracy, conditional_accuracy, wilson_interval
from radsynth.vocabulary import Finding, Labels


def test_wilson_interval_known_values():
    # Hand-computed from the formula with z = 1.959964.
    assert wilson_interval(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((0.722467, 1.0), abs=1e-6)
    assert wilson_interval(0, 12)[0] == 0.0 and wilson_interval(12, 12)[1] == 1.0
    # Newcombe, Stat Med 1998;17:857, table I: 81/263 gives 0.2553 to 0.3662.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_fields_are_scored_only_where_the_prompt_asked():
    asked = ["An X-ray of the knee", "Lateral radiograph of the left knee", "CT of the head"]
    predicted = [
        Labels(modality="xray", region="knee", view="ap", laterality="right"),
        Labels(modality="xray", region="knee", view="ap", laterality="left"),
        Labels(modality="xray", region="head"),
    ]
    scores = conditional_accuracy(asked, predicted)
    fields = scores["fields"]
    assert (fields["modality"].successes, fields["modality"].n) == (2, 3)
    assert (fields["region"].successes, fields["region"].n) == (3, 3)
    assert (fields["view"].successes, fields["view"].n) == (0, 1)  # only the lateral asked
    assert (fields["laterality"].successes, fields["laterality"].n) == (1, 1)
    assert "sex" not in fields
    assert fields["modality"].low == pytest.approx(wilson_interval(2, 3)[0])


def test_findings_present_when_asked_and_absent_when_not():
    asked = [
        "Radiograph of the left knee with a displaced patellar fracture",
        "Radiograph of the left knee with a patellar fracture",
        "Radiograph of the left knee",
        "Radiograph of the left knee",
    ]
    fracture = Finding("fracture", "patella")
    predicted = [
        Labels(modality="xray", region="knee", findings=(fracture,)),
        {"modality": "xray", "findings": {"fracture": 0.2, "joint_effusion": 0.9}},  # reader
        {"modality": "xray", "findings": ["fracture"]},
        {"modality": "xray", "findings": []},
    ]
    scores = conditional_accuracy(asked, predicted)
    present, absent = scores["present_when_asked"], scores["absent_when_not_asked"]
    assert (present["fracture"].successes, present["fracture"].n) == (1, 2)
    assert (absent["fracture"].successes, absent["fracture"].n) == (1, 2)
    assert (absent["joint_effusion"].successes, absent["joint_effusion"].n) == (3, 4)
    assert "joint_effusion" not in present
    assert (
        scores["pooled_present_when_asked"].successes,
        scores["pooled_present_when_asked"].n,
    ) == (1, 2)
    pooled_absent = scores["pooled_absent_when_not_asked"]
    # 13 kinds x 4 images, minus the 2 asked fractures; 2 wrong findings among them.
    assert (pooled_absent.successes, pooled_absent.n) == (13 * 4 - 2 - 2, 13 * 4 - 2)


def test_the_class_calls_a_reader_on_images():
    import numpy as np

    def reader(images):
        return [{"modality": "xray", "region": "hand", "findings": {}} for _ in images]

    metric = ConditionalAccuracy(reader=reader)
    metric.update(["X-ray of the hand", "X-ray of the knee"], images=np.zeros((2, 8, 8)))
    metric.update(["X-ray of the hand"], predicted=[Labels(modality="xray", region="hand")])
    scores = metric.compute()
    assert scores["n"] == 3
    assert (scores["fields"]["region"].successes, scores["fields"]["region"].n) == (2, 3)
    with pytest.raises(ValueError, match="reader"):
        ConditionalAccuracy().update(["X-ray of the hand"], images=np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="2 asked labels but 1"):
        conditional_accuracy(["X-ray of the hand"] * 2, [Labels()])


def test_a_sided_finding_is_scored_for_its_side_where_it_is_seen():
    effusion = "PA chest radiograph with a left pleural effusion"
    asked = [
        effusion,
        effusion,
        effusion,
        effusion,
        "PA chest radiograph with bilateral pleural effusions",  # both sides: no side scored
        "PA chest radiograph with a fracture of the right clavicle",
        "PA chest radiograph with consolidation of the right lower lobe",
        "AP radiograph of the left wrist with a fracture of the distal radius",  # image's side
    ]

    def read(kind: str, p: float, side: str | None) -> dict:
        return {"modality": "xray", "findings": {kind: p}, "finding_sides": {kind: side}}

    predicted = [
        read("pleural_effusion", 0.9, "left"),
        read("pleural_effusion", 0.9, "left"),
        read("pleural_effusion", 0.9, "right"),
        read("pleural_effusion", 0.1, "right"),  # not seen: its side is not scored
        read("pleural_effusion", 0.9, "left"),
        read("fracture", 0.8, None),  # seen, on no one side: not as asked
        read("consolidation", 0.8, "right"),
        read("fracture", 0.9, "left"),
    ]
    scores = conditional_accuracy(asked, predicted)
    sided = scores["side_as_asked"]
    assert set(sided) == {"pleural_effusion", "fracture", "consolidation"}
    assert (sided["consolidation"].successes, sided["consolidation"].n) == (1, 1)
    assert (sided["pleural_effusion"].successes, sided["pleural_effusion"].n) == (2, 3)
    assert (sided["fracture"].successes, sided["fracture"].n) == (0, 1)
    pooled = scores["pooled_side_as_asked"]
    assert (pooled.successes, pooled.n) == (3, 5)
    # A reader that reads no sides leaves side as asked unscored.
    sideless = [{"modality": "xray", "findings": {"pleural_effusion": 0.9}}]
    assert conditional_accuracy([effusion], sideless)["pooled_side_as_asked"] is None
    # Labels as predictions carry their findings' sides.
    labels = [
        Labels(
            modality="xray",
            region="chest",
            findings=(Finding("pleural_effusion", "left_hemithorax"),),
        )
    ]
    assert conditional_accuracy([effusion], labels)["pooled_side_as_asked"].successes == 1

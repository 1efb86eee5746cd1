"""Off-centre windows of a body's detector plane, the outpainting half of the training data."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.phantoms.crops import CROP_REGIONS, make_body_crop
from radsynth.vocabulary import parse_prompt


def test_crop_is_deterministic_off_centre_and_captioned_without_a_region() -> None:
    first, again = make_body_crop(3, size=64), make_body_crop(3, size=64)
    assert np.array_equal(first.image.image, again.image.image)
    assert first.caption == again.caption
    meta = first.image.meta
    assert meta["crop_of"] in CROP_REGIONS and meta["view"] in ("ap", "lateral")
    assert meta["field_mm"] == pytest.approx(64 * first.image.pixel_spacing_mm[0], abs=0.01)
    shift = np.abs(meta["shift_mm"])
    assert shift[2] <= 1.25 * meta["field_mm"] + 0.01 and shift.max() > 0
    labels = parse_prompt(first.caption)
    assert labels.modality == "xray" and labels.region is None
    assert labels.sex == first.subject.sex
    image = first.image.image
    assert image.shape == (64, 64) and image.std() > 0.01
    assert not np.array_equal(image, make_body_crop(4, size=64).image.image)


def test_crop_keeps_the_regional_spacing_of_its_region() -> None:
    knee = make_body_crop(5, region="knee", view="ap", size=64)
    chest = make_body_crop(5, region="chest", view="ap", size=64)
    # The same seed draws the same subject: a chest field is wider than a knee field.
    assert knee.subject == chest.subject
    assert chest.image.pixel_spacing_mm[0] > 1.3 * knee.image.pixel_spacing_mm[0]


def test_a_zoomed_crop_sees_zoom_fields_at_the_spacing_of_a_smaller_radiograph() -> None:
    """zoom 2: the spacing of a regional knee radiograph half the size, the same body, and a
    shift bounded in regional fields (a window of the body, not of the air beside it)."""
    plain = make_body_crop(7, region="knee", view="ap", size=64)
    wide = make_body_crop(7, region="knee", view="ap", size=64, zoom=2.0)
    assert wide.subject == plain.subject and wide.image.image.shape == (64, 64)
    spacing = wide.image.pixel_spacing_mm[0]
    assert spacing == pytest.approx(2 * plain.image.pixel_spacing_mm[0], rel=0.02)
    assert wide.image.meta["zoom"] == 2.0 and plain.image.meta["zoom"] == 1.0
    regional_field = wide.image.meta["field_mm"] / 2
    shift = np.abs(wide.image.meta["shift_mm"])
    assert shift[2] <= 1.25 * regional_field + 0.01 and shift[0] <= 0.6 * regional_field + 0.01
    assert parse_prompt(wide.caption).region is None
    for seed in range(6):  # every zoomed window shows some of the body
        assert make_body_crop(seed, size=64, zoom=2.0).image.image.std() > 0.01


def test_bad_crop_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="not 'full_body'"):
        make_body_crop(0, region="full_body")
    with pytest.raises(ValueError, match="AP or a lateral"):
        make_body_crop(0, view="pa")
    with pytest.raises(ValueError, match="non-negative"):
        make_body_crop(-1)
    with pytest.raises(ValueError, match="1 to 8, not 0.5"):
        make_body_crop(0, zoom=0.5)

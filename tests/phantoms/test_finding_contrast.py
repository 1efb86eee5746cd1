"""A finding a case's labels name stands out in its image: measured against the tissue around
its mask, on the same seed rendered with and without it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from radsynth.phantoms.cases import make_case
from radsynth.vocabulary import Finding


@pytest.mark.parametrize("sequence", ["t1", "t2", "pd"])
def test_an_intracranial_haemorrhage_shows_on_every_mr_sequence(sequence: str) -> None:
    # With brain tissue's relaxation times (T1 900, T2 70 ms) the haemorrhage was invisible
    # on T1, T2 and PD (contrast-to-noise -2 to +3.6) though labelled and captioned.
    for seed in range(3):
        case = make_case(
            seed, modality="mri", region="head", view="axial", sequence=sequence,
            findings_=(Finding("intracranial_haemorrhage"),), size=96,
        )  # fmt: skip
        clean = make_case(
            seed, modality="mri", region="head", view="axial", sequence=sequence,
            findings_=(), size=96,
        )  # fmt: skip
        mask = next(m for k, m in case.image.masks.items() if "haemorrhage" in k)
        ring = ndimage.binary_dilation(mask, iterations=3) & ~mask
        image = case.image.image
        contrast = (image[mask].mean() - image[ring].mean()) / (image[ring].std() + 1e-6)
        assert contrast > 1.5, (sequence, seed, contrast)
        assert np.abs(image - clean.image.image)[mask].max() > 0.1


@pytest.mark.parametrize("site", ["fibula", "tibia", "femur"])
def test_a_plate_asked_on_a_knee_lies_in_its_field(site: str) -> None:
    # Plates took a random place along the shaft (fibular ones at the ankle): asked on a knee
    # radiograph, 0 of 12 fibular and 4 of 12 tibial plates were in the field.
    for seed in range(900, 904):
        case = make_case(
            seed, modality="xray", region="knee", view="ap",
            findings_=(Finding("plate_and_screws", site),), size=64,
        )  # fmt: skip
        assert "plate_and_screws" not in case.image.meta.get("findings_not_shown", []), seed
        plate = [m for k, m in case.image.masks.items() if "plate" in k]
        assert plate and sum(int(m.sum()) for m in plate) >= 4, seed


def test_a_ct_chest_pacemaker_shows_its_generator_on_its_side() -> None:
    # The chest slice lies between the heart and the carina: it crossed the leads (1-6 px)
    # but never the infraclavicular generator, in 12 of 12 cases labelled "pacemaker".
    for seed, side in ((800, "right"), (801, "left"), (802, "left")):
        case = make_case(
            seed, modality="ct", region="chest",
            findings_=(Finding("pacemaker", side=side),), size=64,
        )  # fmt: skip
        generator = case.image.masks.get("finding_pacemaker_generator")
        assert generator is not None and generator.any(), seed
        on_image_right = np.nonzero(generator)[1].mean() > 32
        assert on_image_right == (side == "left")  # the patient's left on the image's right

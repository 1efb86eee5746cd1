"""Captions for findings whose site has no words of its own."""

from __future__ import annotations

import numpy as np

from radsynth.vocabulary import Finding, Labels, make_caption, parse_prompt


def test_knee_prosthesis_with_its_implied_site_gets_a_caption():
    labels = Labels(
        modality="xray",
        region="knee",
        view="ap",
        laterality="left",
        findings=(Finding("knee_prosthesis", "knee"),),
    )
    for style in ("sentence", "terse", "canonical"):
        caption = make_caption(labels, np.random.default_rng(0), style)
        assert parse_prompt(caption).finding_kinds() == {"knee_prosthesis"}, caption

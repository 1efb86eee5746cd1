"""A data set of phantoms captions each image with the findings it shows."""

from __future__ import annotations

import numpy as np

from radsynth.datasets.sources import PhantomSource
from radsynth.datasets.spec import parse_spec
from radsynth.vocabulary import parse_prompt


def test_every_caption_names_the_asked_finding() -> None:
    # The study's template ("An X-ray of the chest"), one caption style in five, left the
    # finding out: an image with a left pleural effusion was captioned without it, and its
    # provenance named that caption as the prompt.
    prompt = "PA X-ray of the chest of a 60-year-old woman with a left pleural effusion"
    entries = [{"prompt": prompt, "count": 12}]
    spec = parse_spec({"source": "phantoms", "seed": 0, "size": 32, "prompts": entries})
    source = PhantomSource(spec)
    entry = spec.prompts[0]
    made = [source.make(entry, seed) for seed in range(12)]
    captions = [m.caption for m in made]
    assert all(parse_prompt(c).findings == parse_prompt(prompt).findings for c in captions)
    assert len(set(captions)) > 1  # still worded in several styles
    assert {m.provenance.prompt for m in made} == {entry.prompt}
    assert all(np.isfinite(m.pixels).all() for m in made)

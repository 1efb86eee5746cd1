"""SPEC files: YAML and TOML read the same, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from radsynth.datasets import SpecError, load_spec, parse_spec
from radsynth.vocabulary import Finding, canonical_caption

YAML_SPEC = """
model: {model}
seed: 7
size: 32
sampler: {{steps: 2, guidance: 2.5}}
formats: [png, dicom]
split: {{train: 0.5, val: 0.25, test: 0.25}}
prompts:
  - prompt: "Lat XR L knee, displaced patella fx"
    count: 2
  - labels: {{modality: xray, region: chest, view: pa, sex: female, age: 60,
              findings: [{{kind: lung_nodule, site: left_lung}}]}}
    count: 3
"""

TOML_SPEC = """
model = "{model}"
seed = 7
size = 32
formats = ["png", "dicom"]
sampler = {{ steps = 2, guidance = 2.5 }}
split = {{ train = 0.5, val = 0.25, test = 0.25 }}

[[prompts]]
prompt = "Lat XR L knee, displaced patella fx"
count = 2

[[prompts]]
count = 3
[prompts.labels]
modality = "xray"
region = "chest"
view = "pa"
sex = "female"
age = 60
findings = [{{ kind = "lung_nodule", site = "left_lung" }}]
"""


def test_yaml_and_toml_give_the_same_spec(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "s.yaml").write_text(YAML_SPEC.format(model=tiny_model))
    (tmp_path / "s.toml").write_text(TOML_SPEC.format(model=tiny_model))
    from_yaml, from_toml = load_spec(tmp_path / "s.yaml"), load_spec(tmp_path / "s.toml")
    assert from_yaml == from_toml
    assert from_yaml.total == 5 and from_yaml.formats == ("png", "dicom")
    knee, chest = from_yaml.prompts
    assert knee.prompt == "Lat XR L knee, displaced patella fx"
    assert (knee.labels.region, knee.labels.view, knee.labels.laterality) == (
        "knee",
        "lateral",
        "left",
    )
    assert knee.labels.findings == (Finding("fracture", "patella", ("displaced",)),)
    # A label combination is prompted with its canonical caption.
    assert chest.prompt == canonical_caption(chest.labels) and chest.prompt.startswith("PA")
    assert (from_yaml.steps, from_yaml.guidance, from_yaml.seed) == (2, 2.5, 7)


def test_relative_model_path_is_taken_from_the_spec_folder(
    tmp_path: Path, tiny_model: Path
) -> None:
    spec_file = tiny_model.parent / "spec.yaml"
    spec_file.write_text(f"model: {tiny_model.name}\nprompts: [{{prompt: knee, count: 1}}]\n")
    assert load_spec(spec_file).model == tiny_model.resolve()


def good(model_folder: Path, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": str(model_folder),
        "prompts": [{"prompt": "PA chest radiograph", "count": 2}],
    }
    spec.update(changes)
    return {k: v for k, v in spec.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"promts": []}, r"promts: unknown key; did you mean 'prompts'"),
        ({"prompts": []}, r"prompts: must be a non-empty list"),
        ({"prompts": [{"prompt": "knee"}]}, r"prompts\[0\]\.count: missing"),
        ({"prompts": [{"prompt": "knee", "count": 0}]}, r"prompts\[0\]\.count: must be a whole"),
        ({"prompts": [{"count": 1}]}, r"prompts\[0\]: give exactly one of prompt"),
        (
            {"prompts": [{"prompt": "xray of the knea", "count": 1}]},
            r"prompts\[0\]\.prompt: .*knea",
        ),
        (
            {"prompts": [{"labels": {"modality": "xray", "region": "liver"}, "count": 1}]},
            r"prompts\[0\]\.labels: xray region 'liver' is not known",
        ),
        (
            {"prompts": [{"labels": {"modality": "xray", "colour": "red"}, "count": 1}]},
            r"prompts\[0\]\.labels\.colour: unknown key",
        ),
        (
            {
                "prompts": [
                    {"labels": {"findings": [{"kind": "fracture", "site": "lung"}]}, "count": 1}
                ]
            },
            r"prompts\[0\]\.labels\.findings\[0\]: site 'lung' does not fit",
        ),
        (
            {
                "prompts": [
                    {"labels": {"findings": [{"kind": "fracture", "qualifiers": 5}]}, "count": 1}
                ]
            },
            r"prompts\[0\]\.labels\.findings\[0\]\.qualifiers: give a word or a list",
        ),
        (
            {
                "prompts": [
                    {
                        "labels": {
                            "region": "knee",
                            "findings": [{"kind": "fracture", "site": "femur", "side": "left"}],
                        },
                        "count": 1,
                    }
                ]
            },
            r"prompts\[0\]\.labels: the fracture on the knee takes the image's side",
        ),
        ({"formats": ["png", "jpeg"]}, r"formats: unknown format 'jpeg'"),
        ({"split": {"train": 0.9, "val": 0.2}}, r"split: the fractions must add up to 1"),
        ({"split": {"training": 1.0}}, r"split\.training: unknown key; did you mean 'train'"),
        ({"sampler": {"steps": 0}}, r"sampler\.steps: must be a whole number >= 1"),
        ({"sampler": {"guidance": "high"}}, r"sampler\.guidance: must be a number"),
        ({"sampler": {"guidance_cutoff": 1.5}}, r"sampler\.guidance_cutoff: must be in \[0, 1\]"),
        ({"seed": -1}, r"seed: must be a whole number >= 0"),
        ({"seed": 2**64}, r"seed: must be at most 9223372036844775807"),
        ({"source": "gan"}, r"source: must be 'model' or 'phantoms'"),
        ({"model": "/no/such/model"}, r"model: /no/such/model is not a model folder"),
    ],
)
def test_mistakes_name_the_key(tiny_model: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(good(tiny_model, **changes))


def test_phantom_specs_take_no_model_and_fit_the_renderer(tiny_model: Path) -> None:
    prompts = [{"prompt": "CT of the chest", "count": 1}]
    spec = parse_spec({"source": "phantoms", "prompts": prompts})
    assert spec.model is None and spec.size == 256
    with pytest.raises(SpecError, match="model: only for source: model"):
        parse_spec({"source": "phantoms", "model": str(tiny_model), "prompts": prompts})
    with pytest.raises(SpecError, match="size: phantom images are 32 to 4096"):
        parse_spec({"source": "phantoms", "size": 16, "prompts": prompts})


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such SPEC file"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "spec.json").write_text("{}")
    with pytest.raises(SpecError, match=r"must end in \.yaml, \.yml or \.toml"):
        load_spec(tmp_path / "spec.json")
    (tmp_path / "bad.yaml").write_text("prompts: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad\.yaml: not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    (tmp_path / "bad.toml").write_text("prompts = [\n")
    with pytest.raises(SpecError, match=r"bad\.toml: not valid TOML"):
        load_spec(tmp_path / "bad.toml")


def test_a_guidance_cutoff_is_part_of_the_spec_only_when_given(tiny_model: Path) -> None:
    plain = parse_spec(good(tiny_model, sampler={"steps": 2}))
    assert plain.guidance_cutoff is None
    # A SPEC without the key normalises as before it existed: data sets begun then resume.
    assert plain.to_dict()["sampler"] == {"steps": 2, "guidance": None}
    late = parse_spec(good(tiny_model, sampler={"steps": 2, "guidance_cutoff": 0.5}))
    assert late.guidance_cutoff == 0.5 and late.to_dict()["sampler"]["guidance_cutoff"] == 0.5
    assert late.to_dict() != plain.to_dict()


def test_a_finding_in_a_spec_may_carry_its_own_side() -> None:
    femur = {"kind": "fracture", "site": "femur", "side": "right"}
    labels = {"modality": "xray", "region": "full_body", "findings": [femur]}
    spec = parse_spec({"source": "phantoms", "prompts": [{"labels": labels, "count": 1}]})
    (entry,) = spec.prompts
    assert entry.labels.findings == (Finding("fracture", "femur", side="right"),)
    assert "fracture of the right femur" in entry.prompt


def test_the_readme_spec_example_builds_a_spec(tiny_model: Path) -> None:
    """The README's SPEC example is valid (its model folder replaced by a real one)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```yaml\nsource: model")[1].split("```")[0]
    data = yaml.safe_load("source: model" + block)
    data["model"] = str(tiny_model)
    spec = parse_spec(data)
    assert [entry.count for entry in spec.prompts] == [8, 4, 4]
    assert spec.prompts[2].labels.findings == (Finding("fracture", "femur", side="left"),)

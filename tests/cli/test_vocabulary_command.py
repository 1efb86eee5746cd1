"""`radsynth vocabulary`: what a prompt can ask for, and how a prompt is read."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from radsynth.cli.app import app
from radsynth.vocabulary import FINDINGS_BY_REGION, REGIONS_BY_MODALITY
from radsynth.vocabulary.terms import describe

runner = CliRunner()


def test_the_overview_lists_every_region_and_its_findings():
    result = runner.invoke(app, ["vocabulary"])
    assert result.exit_code == 0, result.output
    blocks: dict[str, list[str]] = {}  # modality heading -> its region lines
    listing = result.output.split("\nSides:")[0]  # the note on sides closes the list
    for line in listing.splitlines():
        if not line.startswith(" ") and ": views " in line:
            heading = line.split(":")[0]
            blocks[heading] = []
        elif line.startswith("  ") and not line.startswith("   ") and ":" not in line.strip()[:-1]:
            blocks[heading].append(line.strip())
        elif line.endswith(": no findings"):
            blocks[heading].append(line.strip().removesuffix(": no findings"))
    expected = {
        describe("modality", m): [describe("region", r) for r in regions]
        for m, regions in REGIONS_BY_MODALITY.items()
    }
    assert blocks == expected
    assert "fracture; sites: femur, femoral neck, tibia" in result.output  # the whole body
    assert "'bilateral' or 'both' asks for a finding on each side" in result.output


def test_one_region_shows_its_findings_with_sites_and_qualifiers():
    result = runner.invoke(app, ["vocabulary", "--modality", "xray", "--region", "wrist"])
    assert result.exit_code == 0, result.output
    findings = [line.strip() for line in result.output.splitlines() if line.startswith("    ")]
    assert len(findings) == len(FINDINGS_BY_REGION[("xray", "wrist")])
    assert "fracture; sites: distal radius, radius, ulna, metacarpal" in findings[0]
    assert "jewellery; qualifiers: ring, bracelet" in findings


def test_a_prompt_is_shown_as_read():
    result = runner.invoke(app, ["vocabulary", "--prompt", "CXR, bilateral effusions, 70F"])
    assert result.exit_code == 0, result.output
    first, rest = result.output.split("\n", 1)
    assert first == (
        "reads as: X-ray of the chest of a 70-year-old woman with a left pleural effusion and a "
        "right pleural effusion"
    )
    labels = json.loads(rest)
    assert [f["site"] for f in labels["findings"]] == ["left_hemithorax", "right_hemithorax"]


def test_bad_requests_are_exit_2_errors():
    for args, message in (
        (["--prompt", "X-ray of the knea"], "did you mean 'knee'"),
        (["--region", "elbow"], "no modality images the region 'elbow'"),
        (["--modality", "pet"], "unknown modality 'pet'"),
        (["--modality", "us", "--region", "knee"], "us does not image the region 'knee'; xray"),
    ):
        result = runner.invoke(app, ["vocabulary", *args])
        assert result.exit_code == 2 and message in result.output, args


def test_a_word_is_shown_with_its_value_and_its_other_words():
    result = runner.invoke(app, ["vocabulary", "--words", "kneecap"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "'kneecap' is the site 'patella' (patella)"
    assert lines[1] == "  written in captions: patella"
    assert lines[2] == "  read from: patella, patellar, kneecap, knee cap"
    plural = runner.invoke(app, ["vocabulary", "--words", "kneecaps"])
    assert plural.output.splitlines()[0] == "'kneecaps' is the site 'patella' (patella)"
    hip = runner.invoke(app, ["vocabulary", "--words", "hip fracture"])
    assert "  also sets: site 'femoral_neck'" in hip.output.splitlines()
    unknown = runner.invoke(app, ["vocabulary", "--words", "kneecup"])
    assert unknown.exit_code == 2 and "'kneecup' is not a radsynth term" in unknown.output


def test_options_take_the_words_prompts_take():
    # --region "lumbar spine", "Chest", "hip" and --modality CT were refused ("no modality
    # images the region 'lumbar spine'") though prompts read them.
    spelled = runner.invoke(app, ["vocabulary", "--modality", "CT", "--region", "Chest"])
    plain = runner.invoke(app, ["vocabulary", "--modality", "ct", "--region", "chest"])
    assert spelled.exit_code == 0 and spelled.output == plain.output
    spine = runner.invoke(app, ["vocabulary", "--region", "lumbar spine"])
    assert spine.exit_code == 0 and "  lumbar spine" in spine.output
    hip = runner.invoke(app, ["vocabulary", "--region", "hip"])
    assert hip.exit_code == 0 and "  pelvis" in hip.output


def test_words_that_set_nothing_say_so_and_a_dotted_side_is_read():
    # --words said "'comminuted' is not a radsynth term" while prompts accept it.
    for word in ("comminuted", "weight-bearing", "small"):
        result = runner.invoke(app, ["vocabulary", "--words", word])
        assert result.exit_code == 0, result.output
        assert "is accepted in prompts and sets nothing" in result.output
    negation = runner.invoke(app, ["vocabulary", "--words", "without"])
    assert "negates the findings after it" in negation.output
    side = runner.invoke(app, ["vocabulary", "--words", "lt."])
    assert side.exit_code == 0 and "'lt.' is the laterality 'left'" in side.output
    frontal = runner.invoke(app, ["vocabulary", "--words", "frontal"])
    assert "written in captions: \n" not in frontal.output  # no empty line
    unknown = runner.invoke(app, ["vocabulary", "--words", "banana"])
    assert unknown.exit_code == 2 and "not a radsynth term" in unknown.output


def test_reading_and_listing_are_not_mixed():
    # --prompt with --region printed the prompt's reading and ignored the region.
    result = runner.invoke(app, ["vocabulary", "--prompt", "knee X-ray", "--region", "chest"])
    assert result.exit_code == 2 and "--prompt and --region do different things" in result.output
    both = runner.invoke(app, ["vocabulary", "--words", "fx", "--prompt", "knee X-ray"])
    assert both.exit_code == 2 and "give one" in both.output

"""``runninghub-async models``: listing and describing the catalogued models offline."""

from __future__ import annotations

import pytest

from runninghub_async._cli import main


def test_models_lists_the_matches_best_first(capsys: pytest.CaptureFixture[str]) -> None:
    """Every word must match; each line has the endpoint, kind, name and price."""
    assert main(["models", "speech", "2.8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 models"
    assert lines[0].split()[:3] == [
        "rhart-audio/text-to-audio/speech-2.8-hd",
        "audio",
        "minimax/speech-2.8-hd",
    ]
    assert "CNY per 1000 characters" in lines[0]


def test_models_without_words_lists_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    """A bare ``models`` lists the whole catalog."""
    assert main(["models"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "303 models"


def test_models_with_no_match_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing found is said, with exit status 1."""
    assert main(["models", "no-such-model-at-all"]) == 1
    assert capsys.readouterr().out.strip() == "no models match"


def test_models_show_describes_the_params(capsys: pytest.CaptureFixture[str]) -> None:
    """``models show NAME`` takes a documented name and prints types, values, defaults."""
    assert main(["models", "show", "nano-banana-pro/edit-channel-low-price"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rhart-image-n-pro/edit\n")
    assert "0.4-0.5 CNY per call by resolution" in out
    assert "* imageUrls    image   a list of 1 to 10 image URLs, each at most 10 MB" in out
    assert "  aspectRatio  enum    one of 1:1, 16:9" in out
    assert '(default "3:4")' in out


def test_models_show_of_an_unknown_model_names_the_closest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown name is one error line with suggestions, exit status 1."""
    assert main(["models", "show", "minimax/speech-2.8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "did you mean: minimax/speech-2.8-hd" in err

"""The typed views of the settings each component takes: built from the flat `CITEQA_*`
settings, and checked when built by hand, with the bad value in the message."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import ConfigurationError
from core.settings import Settings
from qa.pipeline import AnswerOptions
from qa.retrieve import FusionWeights
from server.options import ServerOptions


def test_answer_options_follow_the_flat_settings() -> None:
    settings = Settings(top_k=3, weight_lexical=0.2, rrf_k=9, collection="news",
                        llm_passages=7, abstain_threshold=0.3)
    options = AnswerOptions.from_settings(settings)
    assert (options.top_k, options.fusion.lexical, options.fusion.k) == (3, 0.2, 9)
    assert options.generation.passages == 7 and options.abstain_threshold == 0.3
    assert options.collection_for(None) == "news" and options.collection_for("x") == "x"


@pytest.mark.parametrize(("field", "value"), [("top_k", 0), ("candidates", -1),
                                               ("time_boost", 0.5),
                                               ("abstain_threshold", 1.5)])
def test_answer_options_refuse_a_bad_value_by_name(field: str, value: float) -> None:
    good = AnswerOptions.from_settings(Settings())
    with pytest.raises(ValueError, match=rf"{field} .*{value}"):
        replace(good, **{field: value})


def test_fusion_weights_refuse_negative_weights() -> None:
    with pytest.raises(ValueError, match="negative"):
        FusionWeights(dense=-1.0)


def test_server_options_fail_closed_on_a_keys_setting_that_yields_no_key() -> None:
    with pytest.raises(ConfigurationError) as refused:
        ServerOptions.from_settings(Settings(api_keys=" , "))
    assert refused.value.code == "no_api_keys"


def test_server_options_leave_room_for_the_multipart_envelope() -> None:
    options = ServerOptions.from_settings(Settings(max_upload_bytes=4096, api_keys="k1,k2"))
    assert options.max_body_bytes > 4096 and options.api_keys == ("k1", "k2")

"""The Predict page's brand history: a bad dump is one error before any model loads; helpers escape text."""

from app.brand import grounding_caption, highlight_unsupported
from core.stages.grounding import Evidence, check
from tests.test_app_pages import SUBMIT, assert_no_exception, fill_tweet_form, new_app


def test_a_history_dump_without_content_is_refused_before_predicting():
    at = new_app()
    fill_tweet_form(at)
    at.file_uploader(key="tweet.brand_upload").upload("brand.csv", b"id,date,username\n1,2023-01-01,acme\n",
                                                      "text/csv")
    at.button(key=SUBMIT).click().run()
    assert_no_exception(at)
    assert at.error and "missing column(s) content" in at.error[0].value
    assert "tweet.last" not in at.session_state, "nothing was predicted"


def test_unsupported_details_are_highlighted_and_the_rest_escaped():
    tweet = "Orbit Lab since 1969 *wow* [x](http://e.x)"
    report = check(tweet, Evidence.from_inputs(["orbit lab"])).to_dict()
    shown = highlight_unsupported(tweet, report)
    assert ":red-background[1969]" in shown and "\\*wow\\*" in shown and "](" not in shown
    assert "2 details not in the inputs: 1969, http://e.x" in grounding_caption(report)


def test_the_brand_kit_toggle_and_fields_are_in_the_history_form():
    from app.brand import kit_caption

    at = new_app()
    assert_no_exception(at)
    assert at.toggle(key="tweet.kit_on").value is True
    for key in ("tweet.kit_signoff", "tweet.kit_hashtag", "tweet.kit_emoji"):
        assert at.text_input(key=key).value in ("", None)
    assert kit_caption({"kit_added": ["Happy reading!", "#ShelfLife"]}) == "Brand kit added: Happy reading! #ShelfLife"
    assert kit_caption({"kit_added": []}) == "" and kit_caption({}) == ""

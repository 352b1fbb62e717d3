"""A brand's voice learned from its own tweets: what recurs is a habit, what does not is content."""

from core.brand.voice import BrandVoice, last_sentence, learn_voice

ORBIT = [
    "Moon Lamp from Orbit Lab: 20% off today only. 🚀 Ad astra. #ToTheStars",
    "Big news! The Star Map is here. Ad astra. #ToTheStars <hyperlink>",
    "Launch Tour - new, this weekend. 🚀 Ad astra.",
    "Nova Rocket Kit, free delivery all month! #ToTheStars #Space",
]


def test_recurring_hashtag_signoff_and_emoji_are_learned():
    voice = learn_voice(ORBIT)
    assert voice.hashtags == ["#ToTheStars"]  # #Space appears once: not a habit
    assert voice.signoffs == ["Ad astra."]
    assert voice.emojis == ["🚀"]
    assert voice.n == 4 and voice.median_chars > 40 and voice.lowercase_share == 0
    assert "#ToTheStars" in voice.hint() and 'sign-off "Ad astra."' in voice.hint()


def test_markers_found_in_a_tweet_case_insensitively():
    voice = learn_voice(ORBIT)
    assert voice.found_in("New lamp! ad astra #tothestars") == ["#ToTheStars", "Ad astra."]
    assert voice.found_in("A plain tweet about lamps.") == []


def test_lowercase_brands_and_no_history():
    voice = learn_voice(["eat well. good food #EatGreen", "soup today. good food #EatGreen"])
    assert voice.lowercase_share == 1.0 and "all lowercase" in voice.hint()
    assert learn_voice([]) == BrandVoice() and BrandVoice().hint() == "" and BrandVoice().markers == []


def test_last_sentence_ignores_links_tags_and_emoji():
    assert last_sentence("Big sale today! Stay cozy. ☕ #Coffee <hyperlink>") == "Stay cozy."
    assert last_sentence("Only one sentence #tag") == ""

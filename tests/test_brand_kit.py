"""The brand kit finish: the brand's sign-off, hashtag and emoji added where a tweet lacks them, within 280."""

from core.brand.kit import MAX_CHARS, BrandKit, apply_kit
from core.brand.voice import BrandVoice, learn_voice

KIT = BrandKit("Stay cozy, friends.", "#NorthwindMornings", "☕")


def test_missing_markers_are_added_in_the_brands_layout_and_recorded():
    result = apply_kit("Cold brew is 20% off this Friday <hyperlink>", KIT)
    assert result.tweet == "Cold brew is 20% off this Friday. ☕ Stay cozy, friends. #NorthwindMornings <hyperlink>"
    assert result.added == ["Stay cozy, friends.", "#NorthwindMornings", "☕"]


def test_markers_already_there_are_not_added_twice():
    result = apply_kit("Cold brew is back! ☕ stay cozy, friends. #northwindmornings", KIT)
    assert result.added == [] and result.tweet == "Cold brew is back! ☕ stay cozy, friends. #northwindmornings"
    # A tweet carrying the brand's second hashtag needs no other: the learned voice decides.
    voice = BrandVoice(hashtags=["#NorthwindMornings", "#ColdBrew"], signoffs=["Stay cozy, friends."], emojis=["☕"])
    assert "#NorthwindMornings" not in apply_kit("Cold brew is back #ColdBrew", KIT, voice).added


def test_the_kit_never_goes_past_280_characters_or_finishes_an_empty_tweet():
    long = "word " * 54 + "end"  # 273 characters: only the emoji still fits
    result = apply_kit(long, KIT)
    assert len(result.tweet) <= MAX_CHARS and result.added == ["☕"]
    assert apply_kit("", KIT).tweet == "" and apply_kit("#ShelfLife", KIT).added == []
    assert apply_kit("Anything at all", BrandKit()).added == []


def test_a_kit_from_learned_voice_and_a_typed_one():
    voice = learn_voice([f"Tweet {i} about lamps. Ad astra. 🚀 #ToTheStars" for i in range(5)])
    assert BrandKit.from_voice(voice) == BrandKit("Ad astra.", "#ToTheStars", "🚀")
    assert BrandKit.from_voice(BrandVoice()).empty
    assert BrandKit.typed("  Happy   reading! ", "Shelf Life", " 📚 ") == BrandKit("Happy reading!", "#ShelfLife", "📚")

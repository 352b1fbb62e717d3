"""The grounding check: a tweet's checkable details against what its inputs actually say."""

import pytest

from core.stages.grounding import Evidence, check, extract_details, rank_key, salient_words

ROCKET = Evidence.from_inputs(
    ["Orbit Lab", "OrbitLabSpace", "a photo of a rocket", "MOON LAMP 20% OFF THIS FRIDAY"],
    "2023-05-05 10:00", voice=["#ToTheStars", "Ad astra."],
)


def _kinds(tweet):
    return [(d.kind, d.text) for d in extract_details(tweet)]


def test_details_of_every_kind_are_listed_in_reading_order():
    tweet = ("Orbit Lab has been building rockets since 1969! Join us Friday at 10am, $4.50 a ticket, 20% off "
             "with @nasa on March 3rd: www.orbit.example <hyperlink> #ToTheStars")
    assert _kinds(tweet) == [("name", "Orbit Lab"), ("number", "1969"), ("date", "Friday"), ("time", "10am"),
                             ("price", "$4.50"), ("percent", "20%"), ("handle", "@nasa"), ("date", "March 3rd"),
                             ("url", "www.orbit.example")]


def test_placeholders_hashtags_and_sentence_capitals_are_not_details():
    assert _kinds("Meet the team. Great news today! #Launch2023 <mention> <hyperlink>") == []


def test_the_issue_example_invented_year_is_unsupported_the_poster_facts_are_not():
    report = check("Orbit Lab has been building rockets since 1969. Moon Lamp 20% off this Friday!", ROCKET)
    assert [d.text for d in report.unsupported] == ["1969"]
    assert {d.text for d in report.details if d.supported} == {"Orbit Lab", "Moon Lamp", "20%", "Friday"}


@pytest.mark.parametrize(
    ("tweet", "unsupported"),
    [
        ("Moon Lamp now 30% off!", ["30%"]),
        ("Only $19.99 at Orbit Lab", ["$19.99"]),
        ("See you in Lisbon with Skyline Airways", ["Lisbon", "Skyline Airways"]),
        ("Say hi to @OrbitLabSpace and @nasa", ["@nasa"]),
        ("Doors open at 10am on Friday", []),  # the post's own date: Friday 2023-05-05 10:00
        ("Ad astra. #ToTheStars", []),  # the brand's sign-off is voice, not a fact
        ("Details at https://orbit.example/lamp", ["https://orbit.example/lamp"]),
    ],
)
def test_unsupported_details(tweet, unsupported):
    assert [d.text for d in check(tweet, ROCKET).unsupported] == unsupported


def test_accents_and_case_fold_when_matching():
    evidence = Evidence.from_inputs(["CAFE NOIR opens today"])
    assert check("Café Noir is open!", evidence).unsupported == []


def test_salient_words_and_coverage():
    salient = salient_words("MOON LAMP\n20% OFF\nTHIS FRIDAY", "a photo of a rocket")
    assert salient == ["moon", "lamp", "20", "friday", "rocket"]
    report = check("The moon lamp is 20% off!", ROCKET, salient)
    assert report.used == ["moon", "lamp", "20"] and report.coverage == pytest.approx(0.6)
    assert check("Anything", ROCKET, []).coverage == 1.0
    data = report.to_dict()
    assert data["unsupported"] == [] and data["coverage"] == 0.6 and data["salient"] == salient


def test_rank_key_prefers_grounded_then_covering_then_likely():
    salient = salient_words("MOON LAMP 20% OFF", "")
    invented = check("Moon Lamp, since 1969, 20% off", ROCKET, salient)
    grounded = check("Moon Lamp 20% off", ROCKET, salient)
    vague = check("Something new", ROCKET, salient)
    ranked = sorted([invented, vague, grounded], key=rank_key)
    assert ranked == [grounded, vague, invented]  # an invented detail costs more than a missed word
    assert rank_key(grounded, -1.0) < rank_key(grounded, -2.0)


def test_a_bare_placeholder_never_beats_a_real_tweet_and_poster_promo_words_are_salient():
    from core.stages.grounding import Evidence, check, rank_key, salient_words

    ocr = "GRAND OPENING Saturday 10am free coffee for the first 50 guests"
    salient = salient_words(ocr, "a photo of a web site")
    assert {"grand", "opening", "coffee", "guests"} <= set(salient)
    evidence = Evidence.from_inputs([ocr, "Bean Town Coffee", "beantowncoffee"], date="2023-05-06 09:00")
    bare, real = check("<link>", evidence, salient), check("Grand opening at 10am: free coffee! <hyperlink>",
                                                           evidence, salient)
    assert bare.content_words == 0 and real.content_words >= 2 and real.coverage > 0
    assert rank_key(real, -3.0) < rank_key(bare, -0.1)  # likelier, but not a tweet


def test_thin_tweets_are_the_posters_words_a_bare_hashtag_or_a_placeholder():
    from core.stages.grounding import is_thin, own_words

    poster = "AUTHOR TALK\nTHURSDAY 6PM"
    assert own_words("AUTHOR TALK THURSDAY 6PM #ShelfLife <hyperlink>", poster) == []
    assert is_thin("Author talk Thursday 6pm #ShelfLife", poster)
    assert is_thin("#ShelfLife", poster) and is_thin("<hyperlink>", "")
    assert is_thin("OAT MILK AT NO EXTRA COST", "OAT MILK AT NO EXTRA COST")
    sentence = "Join us on Thursday at 6pm for an author talk: bring your questions! #ShelfLife"
    assert not is_thin(sentence, poster) and own_words(sentence, poster)[:3] == ["join", "us", "on"]


def test_near_copy_flags_a_repost_not_a_new_tweet_on_the_brands_usual_frame():
    from core.stages.grounding import NEAR_COPY_RATIO, copy_similarity, near_copy

    history = ["The online shop is paused for stocktake until Monday. Happy reading! #ShelfLife",
               "Moon Lamp from Orbit Lab: 20% off today only. Ad astra. #ToTheStars"]
    ratio, where = near_copy("The online shop is paused for stocktake until monday ☕ <hyperlink>", history)
    assert ratio >= NEAR_COPY_RATIO and where == 0
    new = "Star Map from Orbit Lab: 30% off this weekend. Ad astra. #ToTheStars"
    assert near_copy(new, history, ignore=["Ad astra."])[0] < NEAR_COPY_RATIO
    # The shared sign-off is voice: left out, it no longer makes two short tweets alike.
    assert copy_similarity("Ad astra. New lamps", "Ad astra. Old maps") > copy_similarity(
        "Ad astra. New lamps", "Ad astra. Old maps", ignore=["Ad astra."])
    assert near_copy("Happy reading!", history) == (0.0, -1)  # too short to be a copy (it is thin)


def test_labels_named_are_wrong_subjects_unless_the_media_says_so():
    from core.stages.grounding import labels_named

    labels = ["bobsled", "football helmet", "go-kart"]
    assert labels_named("Meet our bobsled team!", labels, "an astronaut on a spacewalk") == ["bobsled"]
    assert labels_named("Our shop cat says hi", ["Egyptian cat", "tabby"], "our shop cat Chelsea") == []
    assert labels_named("Cold brew season", labels) == []


def test_rank_key_puts_copies_last_and_sentences_before_thin_tweets():
    salient = salient_words("MOON LAMP 20% OFF", "")
    a = check("Moon Lamp 20% off, bright nights ahead for every star gazer", ROCKET, salient)
    b = check("MOON LAMP 20% OFF", ROCKET, salient)
    assert rank_key(a, copy=True) > rank_key(b, thin=True)  # a near copy is never chosen over another tweet
    assert rank_key(a, thin=False) < rank_key(b, thin=True, voice=2)  # substance before voice
    assert rank_key(a, voice=2) < rank_key(a, voice=0)


# ---------------------------------------------------------------- invented sentences and the brand's history

def _report(tweet: str, evidence):
    from core.stages.grounding import check, salient_words

    return check(tweet, evidence, salient_words("HOME GAME SATURDAY 3PM"))


def test_a_sentence_that_invents_goes_and_the_facts_stay():
    from core.stages.grounding import Evidence, without_invented

    evidence = Evidence.from_inputs(["Riverside Rovers", "riversiderovers", "HOME GAME SATURDAY 3PM"])
    tweet = "Home game Saturday 3pm! Come and cheer the team on. We beat Oldham Town to lift the 2019 Cup. #COYR"
    report = _report(tweet, evidence)
    assert {"Oldham Town", "2019", "Cup"} <= {d.text for d in report.unsupported}
    trimmed = without_invented(tweet, report, keep="Home game Saturday 3pm")
    assert trimmed == "Home game Saturday 3pm! Come and cheer the team on. #COYR"
    assert not _report(trimmed, evidence).unsupported


def test_in_the_facts_sentence_only_the_clause_that_invents_goes():
    from core.stages.grounding import Evidence, without_invented

    evidence = Evidence.from_inputs(["Riverside Rovers", "HOME GAME SATURDAY 3PM"])
    opening = "Home game Saturday 3pm,"
    tweet = "Home game Saturday 3pm, against Oldham Town, come early! Be there."
    trimmed = without_invented(tweet, _report(tweet, evidence), keep=opening)
    assert trimmed == "Home game Saturday 3pm, come early! Be there."
    tweet = "Home game Saturday 3pm, 2019 champions. Be there."
    assert without_invented(tweet, _report(tweet, evidence), keep=opening) == "Home game Saturday 3pm. Be there."
    # a detail inside the opening is the poster's own reading: it stays
    misread = "Home game Saturday 3pm, come early. Be there."
    assert without_invented(misread, _report(misread, Evidence.from_inputs(["Riverside Rovers"])),
                            keep=opening).startswith("Home game Saturday 3pm,")


def test_nothing_is_trimmed_down_to_a_stub():
    from core.stages.grounding import Evidence, without_invented

    evidence = Evidence.from_inputs(["Riverside Rovers", "HOME GAME SATURDAY 3PM"])
    short = "Go! We beat Oldham Town at Kingsway Park."
    assert without_invented(short, _report(short, evidence)) == short  # "Go!" alone says nothing
    clean = "Home game Saturday 3pm. Come along."
    assert without_invented(clean, _report(clean, evidence)) == clean


def test_the_brands_history_backs_names_but_not_numbers():
    from core.stages.grounding import Evidence, check

    history = ["Our captain Jo Marsh at Kingsway Park last season, tickets were $12"]
    with_history = Evidence.from_inputs(["Riverside Rovers", "HOME GAME SATURDAY 3PM"], history=history)
    without = Evidence.from_inputs(["Riverside Rovers", "HOME GAME SATURDAY 3PM"])
    tweet = "Home game Saturday 3pm at Kingsway Park with Jo Marsh, tickets $12"
    assert {d.text for d in check(tweet, without).unsupported} == {"Kingsway Park", "Jo Marsh", "$12"}
    assert [d.text for d in check(tweet, with_history).unsupported] == ["$12"]


def test_a_tweet_that_runs_on_after_a_dash_is_cut_where_it_ended():
    from core.stages.grounding import cut_run_on

    assert cut_run_on("Rose bushes $5 off this weekend. Have a lovely day! 🌸 #BloomCrew - Good evening, welcome "
                      "to my shop") == "Rose bushes $5 off this weekend. Have a lovely day! 🌸 #BloomCrew"
    assert cut_run_on("Signed editions today only. Happy reading! - signed editions today") == \
        "Signed editions today only. Happy reading!"
    assert cut_run_on("Big sale - all shoes 20% off") == "Big sale - all shoes 20% off"  # a dash inside a sentence
    assert cut_run_on("Go! - and the rest of it") == "Go! - and the rest of it"  # "Go!" alone would be thin


def test_a_tweet_that_keeps_the_facts_ranks_above_one_that_drops_them_even_if_thin():
    from core.stages.grounding import Evidence, check, rank_key, salient_words

    evidence = Evidence.from_inputs(["Bloom", "ROSE BUSHES $5 OFF THIS WEEKEND"])
    salient = salient_words("ROSE BUSHES $5 OFF THIS WEEKEND")
    facts = check("Rose bushes $5 off this weekend! 🌸", evidence, salient)
    chatty = check("What a lovely day to be out in the garden with friends and family", evidence, salient)
    assert sorted([(chatty, False), (facts, True)], key=lambda r: rank_key(r[0], thin=r[1]))[0][0] is facts


def test_a_bare_date_or_time_is_no_tweet():
    from core.stages.grounding import MIN_CONTENT_WORDS, Evidence, check

    evidence = Evidence.from_inputs(["Meadow Store"], "2023-11-08 16:46")
    assert check("2023-11-08 16:46", evidence).content_words < MIN_CONTENT_WORDS
    assert check("10:47", evidence).content_words < MIN_CONTENT_WORDS
    assert check("Open 10:47 today", evidence).content_words == MIN_CONTENT_WORDS

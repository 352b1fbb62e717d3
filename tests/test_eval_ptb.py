"""The PTB tokeniser gives the COCO caption evaluation's tokens (pycocoevalcap's Java PTBTokenizer).

Expected outputs come from the real tokenizer: pycocoevalcap 1.2's ``PTBTokenizer`` (bundled
stanford-corenlp-3.4.1.jar, ``-preserveLines -lowerCase``, then its PUNCTUATIONS removal) run on
OpenJDK 17 over all these strings in one call, as pycocoevalcap tokenises a corpus.  None of the
strings below depends on which caption follows it, so they are checked here in one call too.
"""

from __future__ import annotations

import pytest

from core.eval.ptb import PUNCTUATIONS, ptb_tokenize, ptb_tokenize_lines

# (input, Java PTBTokenizer output after pycocoevalcap's punctuation removal)
GOLD = [
    (
        "A black-and-white photo of a man's dog sitting on a wooden bench.",
        "a black-and-white photo of a man 's dog sitting on a wooden bench",
    ),
    ("A sign says the coffee costs 3.5 dollars at the café.", "a sign says the coffee costs 3.5 dollars at the café"),
    ('He said "hello" to the crowd.', "he said hello to the crowd"),
    ("She said 'goodbye' and left.", "she said goodbye and left"),
    ("A “curly quoted” sign on the wall.", "a curly quoted sign on the wall"),
    ("It’s a man’s world, isn’t it?", "it 's a man 's world is n't it"),
    ("A cat (probably a tabby) on a sofa.", "a cat -lrb- probably a tabby -rrb- on a sofa"),
    ("Two dogs [one brown] and a cat {white}.", "two dogs -lsb- one brown -rsb- and a cat -lcb- white -rcb-"),
    ("A 1/2 eaten pizza on a plate.", "a 1/2 eaten pizza on a plate"),
    ("About 1,000 people at the concert.", "about 1,000 people at the concert"),
    ("The price is 1,234,567.89 in total.", "the price is 1,234,567.89 in total"),
    ("A hat costs $5 at the market.", "a hat costs $ 5 at the market"),
    ("Send an e-mail to the team.", "send an e-mail to the team"),
    ("A long pause... then silence.", "a long pause then silence"),
    ("Wait…what is that?", "wait what is that"),
    ("'Tis the season to be jolly.", "'t is the season to be jolly"),
    ("Rock 'n' roll band on stage.", "rock 'n' roll band on stage"),
    ("I can't believe it's not butter.", "i ca n't believe it 's not butter"),
    ("They won't go; we'd rather stay; you'll see.", "they wo n't go we 'd rather stay you 'll see"),
    ("I'm here, you're there, they've left.", "i 'm here you 're there they 've left"),
    ("Gonna wanna gotta do it.", "gon na wan na got ta do it"),
    ("Cannot decide between tea and coffee.", "can not decide between tea and coffee"),
    ("A 5-year-old boy with a kite.", "a 5-year-old boy with a kite"),
    ("A state-of-the-art building.", "a state-of-the-art building"),
    ("Mr. Smith and Dr. Jones at the U.S. embassy.", "mr. smith and dr. jones at the u.s. embassy"),
    ("The U.S.A. flag waves.", "the u.s.a. flag waves"),
    ("Meet at 5 p.m. tomorrow.", "meet at 5 p.m. tomorrow"),
    ("A 3.5-inch floppy disk.", "a 3.5-inch floppy disk"),
    ("A #hashtag and an @mention here.", "a #hashtag and an @mention here"),
    ("Hello <hyperlink> and <mention> ok.", "hello <hyperlink> and <mention> ok"),
    ("C++ and C# are languages.", "c++ and c# are languages"),
    ("A & B & C.", "a & b & c."),
    ("AT&T store on the corner.", "at&t store on the corner"),
    ("Fish & chips!!!", "fish & chips !!!"),
    ("What?!?", "what ?!?"),
    ("Yes -- no -- maybe.", "yes no maybe"),
    ("An em—dash and an en–dash.", "an em dash and an en dash"),
    ("Crème brûlée at a café in São Paulo.", "crème brûlée at a café in são paulo"),
    ("Zoë and Chloë's résumé.", "zoë and chloë 's résumé"),
    ("İstanbul and ǅ ligature.", "i̇stanbul and ǆ ligature"),
    ("日本語のテキスト and English.", "日本語のテキスト and english"),
    ("£5 for a pint and €3 for a coffee.", "# 5 for a pint and $ 3 for a coffee"),
    ("¥100 and ¢50 coins.", "¥ 100 and cents 50 coins"),
    ("½ cup of sugar and ¼ tsp salt.", "1/2 cup of sugar and 1/4 tsp salt"),
    ("O'Neil and O'Brien's pub.", "o'neil and o'brien 's pub"),
    ("Y'all ain't seen nothin' yet.", "y' all ai n't seen nothin yet"),
    ("A dog's, cat's and bird's toys.", "a dog 's cat 's and bird 's toys"),
    ("JAMES'S HOUSE IS BIG.", "james 's house is big"),
    (".", ""),
    ("!!!", "!!!"),
    ("A.", "a."),
    ("Path C:\\Users\\me\\file.txt", "path c \\ users \\ me \\ file.txt"),
    ("A+ grade and B- grade.", "a + grade and b grade"),
    ("She's 5'10\" tall.", "she 's 5 10 tall"),
    ("A <b>bold</b> tag.", "a <b> bold </b> tag"),
    ("a.b.c d.e f.", "a.b.c d.e f."),
    ("etc. and so on etc.", "etc. and so on etc."),
    ("Hello World. Another Sentence.", "hello world another sentence"),
    ("word.Word next", "word.word next"),
    ("Ends with abbreviation Inc.", "ends with abbreviation inc."),
    ("A laptop showing http://www.bbc.co.uk/news on screen.", "a laptop showing http://www.bbc.co.uk/news on screen"),
    (
        "Screenshot of https://twitter.com/user/status/12345?s=20.",
        "screenshot of https://twitter.com/user/status/12345?s=20",
    ),
    ("Temperatures of -10°C to 5°C.", "temperatures of -10 ° c to 5 ° c"),
    ("The score was 2–1 at half-time.", "the score was 2 1 at half-time"),
    ("It's 5 o'clock somewhere.", "it 's 5 o'clock somewhere"),
    ("A doggo 🐕\u200d🦺 with a ball ⚽ and a 🎾.", "a doggo with a ball ⚽ and a"),
    ("Sunset 🌅 at the beach 🏖️!", "sunset at the beach"),
    ("A heart ♥ drawn in the sand.", "a heart ♥ drawn in the sand"),
    ("Stars ★★★★☆ rating.", "stars ★ ★ ★ ★ ☆ rating"),
    ("Wait for it......", "wait for it"),
    ("Hmm. . . not sure.", "hmm not sure"),
    ("So… what now…?", "so what now"),
    ("'Cause I said so.", "'cause i said so"),
    ("Rockin' and rollin' all night.", "rockin and rollin all night"),
    ("Ma'am, your order's ready.", "ma'am your order 's ready"),
    ("Don'ts and do's of painting.", "do n'ts and do 's of painting"),
    ("I'd've gone if I could've.", "i 'd 've gone if i could 've"),
    ("Shouldn't've, wouldn't've, couldn't've.", "should n't 've would n't 've could n't 've"),
    ("The 1970s, '70s and 70's fashion.", "the 1970s '70s and 70 's fashion"),
    ("Phone (555) 123-4567 on a flyer.", "phone -lrb-555-rrb-\xa0123-4567 on a flyer"),
    ("Call +1 555 123 4567 today.", "call +1 555\xa0123\xa04567 today"),
    ("Follow @NASA and #space.", "follow @nasa and #space"),
    ("R&B music playing at the B&B.", "r&b music playing at the b&b"),
    ("Salt&pepper on the table.", "salt & pepper on the table"),
    ("A smiley :) and a frowny :(", "a smiley :-rrb- and a frowny :-lrb-"),
    ("Email: info@company.co.uk.", "email info@company.co.uk"),
    ("ftp://files.example.net/file.zip is old.", "ftp / / files.example.net/file.zip is old"),
    ("A file named report_final_v2.pdf.", "a file named report_final_v2 pdf"),
    ("2+2=4 written in chalk.", "2 +2 = 4 written in chalk"),
    ("Rated 4.5/5 stars.", "rated 4.5 / 5 stars"),
    ("₹100 note from India.", "100 note from india"),
    ("A photo of Washington, D.C. at night.", "a photo of washington d.c. at night"),
    ("Made in the U.S.A.", "made in the u.s.a."),
    ("A .jpg file and a .png file.", "a jpg file and a png file"),
    ("Ǆemal and ǅemal and ǆemal.", "ǆemal and ǆemal and ǆemal"),
    ("ΣΊΣΥΦΟΣ and Σ alone.", "σίσυφος and σ alone"),
]


# An 8-image caption set (refs, prediction; scored in tests/test_eval_metrics.py) and its Java PTB tokens,
# from pycocoevalcap 1.2 + Java PTBTokenizer (same run as above).
COCO_INPUTS = [
    (
        [
            "A black-and-white photo of a man's dog sitting on a wooden bench.",
            "Black and white picture of a dog on a bench.",
            "A dog sits on a park bench in a black-and-white image.",
            "An old black-and-white photograph shows a dog resting on a bench.",
        ],
        "A black-and-white photo of a dog sitting on a bench.",
    ),
    (
        [
            "A sign says the coffee costs 3.5 dollars at the café.",
            "Menu board at a café listing coffee for 3.5.",
            "A chalkboard menu outside a small café.",
        ],
        "A café menu shows coffee for 3.5 dollars.",
    ),
    (
        [
            "Salt & pepper shakers on a kitchen table.",
            "Two shakers, salt and pepper, sit on the table!",
            "A table with salt & pepper shakers and a plate.",
        ],
        "Salt & pepper shakers sitting on a table.",
    ),
    (
        [
            "A child who doesn't want to eat his vegetables.",
            "A little boy refusing to eat; he don't like broccoli.",
            "A kid won't eat the green vegetables on his plate?",
        ],
        "A boy who doesn't want to eat vegetables.",
    ),
    (
        [
            "A naïve painting of a village church in bright colours.",
            "Colourful folk-art painting: a church, houses and trees.",
            "A NAÏVE-STYLE painting shows a church in a village.",
            "Painting of a CHURCH; simple, bright, naïve style.",
            "A brightly coloured village scene with a church.",
        ],
        "A colourful naïve painting of a church in a village.",
    ),
    (
        [
            "Two people riding bikes down a busy city street.",
            "Cyclists ride through traffic on a city road.",
            "People on bicycles -- in the middle of the street.",
        ],
        "Two people ride bicycles on a city street...",
    ),
    (
        [
            "The woman's umbrella is red; it's raining.",
            "A woman holds a red umbrella in the rain.",
            "Woman with a red umbrella walking in the rain.",
        ],
        "A woman with a red umbrella in the rain",
    ),
    (
        [
            "A plate of pasta, bread & a glass of wine.",
            "Dinner: pasta and wine on a table.",
            "A glass of red wine next to a plate of spaghetti.",
        ],
        "A plate of spaghetti and a glass of wine on a table.",
    ),
]
COCO_TOKENS = [
    (
        [
            "a black-and-white photo of a man 's dog sitting on a wooden bench",
            "black and white picture of a dog on a bench",
            "a dog sits on a park bench in a black-and-white image",
            "an old black-and-white photograph shows a dog resting on a bench",
        ],
        "a black-and-white photo of a dog sitting on a bench",
    ),
    (
        [
            "a sign says the coffee costs 3.5 dollars at the café",
            "menu board at a café listing coffee for 3.5",
            "a chalkboard menu outside a small café",
        ],
        "a café menu shows coffee for 3.5 dollars",
    ),
    (
        [
            "salt & pepper shakers on a kitchen table",
            "two shakers salt and pepper sit on the table",
            "a table with salt & pepper shakers and a plate",
        ],
        "salt & pepper shakers sitting on a table",
    ),
    (
        [
            "a child who does n't want to eat his vegetables",
            "a little boy refusing to eat he do n't like broccoli",
            "a kid wo n't eat the green vegetables on his plate",
        ],
        "a boy who does n't want to eat vegetables",
    ),
    (
        [
            "a naïve painting of a village church in bright colours",
            "colourful folk-art painting a church houses and trees",
            "a naïve-style painting shows a church in a village",
            "painting of a church simple bright naïve style",
            "a brightly coloured village scene with a church",
        ],
        "a colourful naïve painting of a church in a village",
    ),
    (
        [
            "two people riding bikes down a busy city street",
            "cyclists ride through traffic on a city road",
            "people on bicycles in the middle of the street",
        ],
        "two people ride bicycles on a city street",
    ),
    (
        [
            "the woman 's umbrella is red it 's raining",
            "a woman holds a red umbrella in the rain",
            "woman with a red umbrella walking in the rain",
        ],
        "a woman with a red umbrella in the rain",
    ),
    (
        [
            "a plate of pasta bread & a glass of wine",
            "dinner pasta and wine on a table",
            "a glass of red wine next to a plate of spaghetti",
        ],
        "a plate of spaghetti and a glass of wine on a table",
    ),
]


def test_one_call_matches_the_java_tokenizer_string_for_string():
    got = ptb_tokenize_lines([text for text, _ in GOLD])
    mismatches = [(text, out, java) for (text, java), out in zip(GOLD, got, strict=True) if out != java]
    assert not mismatches


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("A black-and-white photo.", "a black-and-white photo"),  # hyphenated words stay whole
        ("Coffee for 3.5 dollars.", "coffee for 3.5 dollars"),  # decimals stay whole
        ("Salt & pepper", "salt & pepper"),  # "&" is a token
        ("He don't like a man's dog.", "he do n't like a man 's dog"),  # clitics split PTB-style
        ("Un café naïf", "un café naïf"),  # accented letters are letters
        ("A dog 🐶 in the snow", "a dog in the snow"),  # astral characters are untokenizable (Java: UTF-16)
        ("Visit <hyperlink> now <mention>", "visit <hyperlink> now <mention>"),  # placeholders: one SGML token
    ],
)
def test_the_cases_a_regex_tokeniser_gets_wrong(text, tokens):
    assert ptb_tokenize(text) == tokens


def test_coco_caption_set_tokens_equal_pycocoevalcap():
    # pycocoevalcap tokenises all references in one call and all predictions in another.
    refs = [r for image in COCO_TOKENS for r in image[0]]
    preds = [image[1] for image in COCO_INPUTS]
    assert ptb_tokenize_lines([r for image in COCO_INPUTS for r in image[0]]) == refs
    assert ptb_tokenize_lines(preds) == [image[1] for image in COCO_TOKENS]


def test_line_breaks_inside_a_caption_keep_captions_aligned():
    # pycocoevalcap turns "\n" into a space; the Java lexer also ends a line at "\r", U+2028, VT, FF,
    # which would pair every later caption with the wrong image.  Here they are spaces too.
    assert ptb_tokenize_lines(["a\r\nb", "c\u2028d", "e\x0bf", "g"]) == ["a b", "c d", "e f", "g"]


def test_empty_inputs():
    assert ptb_tokenize_lines([]) == []
    assert ptb_tokenize_lines(["", "a", ""]) == ["", "a", ""]
    assert ptb_tokenize("...") == ""


def test_punctuation_list_is_pycocoevalcaps():
    # Case-sensitive there, so the lowercased "-lrb-" survives (kept: it is part of the n-grams).
    assert ptb_tokenize("a (b) c") == "a -lrb- b -rrb- c"
    assert {".", ",", "...", "--", "``", "''"} <= set(PUNCTUATIONS)

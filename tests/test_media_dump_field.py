from core.media.dump_field import looks_like_dump, parse_media_field

PHOTO = (
    "[Photo(previewUrl='https://pbs.twimg.com/media/A.jpg?format=jpg&name=small', "
    "fullUrl='https://pbs.twimg.com/media/A.jpg?format=jpg&name=large')]"
)
VIDEO = (
    "[Video(thumbnailUrl='https://pbs.twimg.com/thumb.jpg', variants=[VideoVariant(contentType='video/mp4', "
    "url='https://video.twimg.com/high.mp4', bitrate=2176000), VideoVariant(contentType='application/x-mpegURL', "
    "url='https://video.twimg.com/pl.m3u8', bitrate=None), VideoVariant(contentType='video/mp4', "
    "url='https://video.twimg.com/low.mp4', bitrate=256000)], duration=12.5, views=1043)]"
)
GIF = (
    "[Gif(thumbnailUrl='https://pbs.twimg.com/gif.jpg', variants=[VideoVariant(contentType='video/mp4', "
    "url='https://video.twimg.com/gif.mp4', bitrate=0)])]"
)


def test_photo_prefers_full_url_and_keeps_preview_as_fallback():
    (item,) = parse_media_field(PHOTO)
    assert item.kind == "photo"
    assert item.url.endswith("name=large")
    assert item.fallback_urls[0].endswith("name=small")


def test_video_takes_lowest_bitrate_mp4_then_others_then_thumbnail():
    (item,) = parse_media_field(VIDEO)
    assert item.kind == "video"
    assert item.url == "https://video.twimg.com/low.mp4"
    assert item.fallback_urls == ("https://video.twimg.com/high.mp4", "https://pbs.twimg.com/thumb.jpg")


def test_gif_and_several_items():
    items = parse_media_field(PHOTO[:-1] + ", " + GIF[1:])
    assert [i.kind for i in items] == ["photo", "gif"]
    assert items[1].url.endswith("gif.mp4")


def test_non_dump_text_and_garbage_give_nothing():
    assert not looks_like_dump("https://example.com/a.jpg")
    assert parse_media_field("") == []
    assert parse_media_field("nan") == []
    assert parse_media_field("[Photo(previewUrl='x'") == []  # truncated repr from a broken CSV cell
    assert parse_media_field("[Photo(previewUrl=__import__('os').system('echo hi'))]") == []


# --------------------------------------------------------------------------- malformed fields (issue 12/15)

import random  # noqa: E402

import pytest  # noqa: E402

from core.errors import MediaError  # noqa: E402
from core.media.decode import load_media  # noqa: E402
from core.media.dump_field import read_media_field  # noqa: E402


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Photo(previewUrl=1, fullUrl=None)]", "Photo (item 1).previewUrl must be a string URL, got int 1"),
        ("[Video(thumbnailUrl='x', variants=5, duration=None)]",
         "Video (item 1).variants must be a list of VideoVariant(…), got int 5"),
        ("[" * 5000 + "Photo(", "unterminated quote or bracket"),
        ("[" * 5000 + "Photo(previewUrl='a')" + "]" * 5000, "nests more than 8 brackets deep"),
        ("[Photo(previewUrl=" + "-" * 15000 + "1)]", "unexpected '-'"),  # drove ast.parse into MemoryError
        ("[Photo(previewUrl=" + "not " * 4000 + "1)]", "expected ','"),  # drove ast.parse into RecursionError
        ("[Photo(previewUrl=" + "a." * 8000 + "b)]", "must be a string URL, got an expression"),
        ("[Video(variants=[VideoVariant(url=3)])]", "Video (item 1).variants[0].url must be a string URL"),
        ("[Video(variants=[VideoVariant(url='u', bitrate='high')])]", "variants[0].bitrate must be a number"),
        ("[Video(variants=[VideoVariant(url='u', contentType=4)])]", "variants[0].contentType must be a string"),
        ("[Video(variants=['u'])]", "variants[0] must be VideoVariant(…), got str"),
        ("[Photo(previewUrl='a'), 5]", "item 2 must be Photo(…), Video(…) or Gif(…), got int 5"),
        ("[Photo(previewUrl='a')] and more", "unexpected text after the closing ']'"),
        ("[Photo(previewUrl='x' + 'y')]", "expected ','"),
        ("[Photo(previewUrl=f'{secret}')]", "got an expression"),
        ("[Photo(previewUrl=" + "9" * 5000 + ")]", "got an expression"),  # over Python's int-digits limit
        ("[Photo(**kwargs)]", "unexpected '**'"),
        ("[Photo(previewUrl='a'", "unterminated quote or bracket"),
        ("[Photo(previewUrl=__import__('os').system('echo hi'))]", "expected ','"),
    ],
)
def test_malformed_fields_are_one_clear_line(text, message):
    with pytest.raises(MediaError) as caught:
        read_media_field(text)
    assert "\n" not in str(caught.value) and message in str(caught.value)
    assert parse_media_field(text) == []  # the lenient reader (training data) skips the row's media instead
    with pytest.raises(MediaError, match="malformed media field"):  # and the loader says the same
        load_media(text)


def test_a_field_over_the_size_cap_is_refused_before_parsing(monkeypatch):
    huge = "[Photo(previewUrl='" + "a" * 5_000_000 + "')]"
    with pytest.raises(MediaError, match=r"5,000,022 characters, over the 20,000 limit \(M2T_MAX_DUMP_FIELD_CHARS\)"):
        read_media_field(huge)
    # Before parsing: the same size of field with its quote left open gets the size message, not the parser's.
    with pytest.raises(MediaError, match=r"5,000,020 characters, over the 20,000 limit"):
        read_media_field(huge[:-2])
    with pytest.raises(MediaError, match="unterminated quote or bracket"):
        read_media_field(huge[:100])  # under the cap, the parser speaks: what it says of an open quote
    monkeypatch.setenv("M2T_MAX_DUMP_FIELD_CHARS", "30")
    with pytest.raises(MediaError, match="over the 30 limit"):
        read_media_field(PHOTO)


def test_real_reprs_with_extras_still_parse():
    text = ("[Photo(previewUrl='https://a/b(1)[2].jpg?x=\\'y\\'', fullUrl=None, altText=\"it's\"), "
            "Video(thumbnailUrl='t.jpg', variants=[VideoVariant(contentType='video/mp4', url='v.mp4', bitrate=-1)], "
            "duration=12.5, views=None, created=datetime.datetime(2023, 1, 2, tzinfo=datetime.timezone.utc)),\n"
            " Poll(options=['a', 'b'])]")
    photo, video = read_media_field(text)
    assert photo.url == "https://a/b(1)[2].jpg?x='y'" and photo.fallback_urls == ()
    assert video.url == "v.mp4" and video.fallback_urls == ("t.jpg",)


def test_fuzzed_fields_never_raise_anything_but_a_media_error():
    """Mutations of real fields (cuts, repeats, swapped characters, inserted brackets and quotes) either
    parse to items with string URLs or give one MediaError line: never another exception."""
    rng = random.Random(0)
    seeds = [PHOTO, VIDEO, GIF, PHOTO[:-1] + ", " + GIF[1:]]
    alphabet = "[](),='\"\\-.0123456789abcNoneTrue_ \n#*"
    for _ in range(3000):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            op, at = rng.random(), rng.randrange(len(text) + 1)
            if op < 0.4:
                text.insert(at, rng.choice(alphabet) * rng.choice((1, 1, 2, 50)))
            elif op < 0.7 and text:
                del text[at - 1 : at - 1 + rng.randint(1, 20)]
            elif text:
                text[at - 1] = rng.choice(alphabet)
        candidate = "".join(text)
        try:
            items = read_media_field(candidate)
        except MediaError as exc:
            assert "\n" not in str(exc)
            continue
        assert all(isinstance(u, str) and u for i in items for u in (i.url, *i.fallback_urls))

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

"""Reading a history dump: every way it can be unusable is one UserError, raised before any model loads."""

import pytest

from core.brand.history import account_key, dump_digest, parse_date, read_history
from core.errors import UserError

HEADER = "id,date,likes,content,username,media,inferred company\n"


def _write(path, body):
    path.write_text(HEADER + body if body is not None else "")
    return path


def test_a_good_dump_reads_with_dates_accounts_and_likes(tmp_path):
    path = _write(tmp_path / "h.csv", '1,2023-01-02 10:00:00,12,Hello #Brand,@Acme,,Acme Co\n'
                                      '2,2023-01-03 10:00:00+00:00,,"second, tweet",acme,,Acme Co\n'
                                      '3,2023-01-04,5,,acme,,Acme Co\n')
    history = read_history(path)
    assert len(history) == 2  # the row without content is no example
    assert history.content == ["Hello #Brand", "second, tweet"]
    assert list(history.usernames) == ["acme", "acme"] and list(history.companies) == ["acme co", "acme co"]
    assert history.dates[0] < history.dates[1] and history.likes[0] == 12 and history.likes[1] != history.likes[1]
    assert history.ids == ["1", "2"]
    assert len(history.digest) == 64 and history.digest == dump_digest(path)


def test_the_digest_follows_the_bytes(tmp_path):
    a = _write(tmp_path / "a.csv", "1,2023-01-02,1,x,a,,A\n")
    b = _write(tmp_path / "b.csv", "1,2023-01-02,1,y,a,,A\n")
    assert dump_digest(a) != dump_digest(b)
    assert dump_digest(a) == dump_digest(_write(tmp_path / "c.csv", "1,2023-01-02,1,x,a,,A\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,date,username\n1,2023-01-01,a\n", "missing column(s) content"),
        ("", "the file is empty"),
        (HEADER, "header but no rows"),
        (HEADER + "1,2023-01-01,1,,a,,A\n", "every `content` is empty"),
        (HEADER + "1,2023-01-01,1,hi,a,,A\n2,not a date,1,yo,a,,A\n", "unreadable (first: row 2, 'not a date')"),
        (HEADER + "1,,1,hi,a,,A\n", "blank or unreadable"),
        ("id,date,content\n1,2023-01-01,hi\n", "no username or inferred company"),
    ],
)
def test_unusable_dumps_fail_with_one_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        read_history(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_history(tmp_path / "none.csv")


def test_account_keys_and_single_dates():
    assert account_key(" @OrbitLab ") == account_key("orbitlab") == "orbitlab"
    assert parse_date("2023-01-01 00:00") == parse_date("2023-01-01T00:00:00+00:00")
    assert parse_date("") is None and parse_date("soon") is None

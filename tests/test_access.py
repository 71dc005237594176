"""Access as pure functions (risk/access.py): where a login may send a browser, the client's address, the
wrong-guess throttle with a fake clock, the session key and generation on disk, constant-time comparison."""

import os
import stat
import threading

import pytest

from risk import access
from risk.config import PipelineError


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/", "/"),
        ("/?client=abcd", "/?client=abcd"),
        ("/toprisk.csv?n=20", "/toprisk.csv?n=20"),
        ("/#clients", "/#clients"),
        ("/login?next=//evil.example", "/login?next=//evil.example"),  # a path here; its own next is checked again
        ("//evil.example", "/"),  # scheme-relative: another host
        ("/\t/evil.example", "/"),  # browsers drop the tab: //evil.example
        ("/\n/evil.example", "/"),  # the same with a newline (and a newline would break the Location header)
        ("/\r\nSet-Cookie: x=1", "/"),
        ("/\\evil.example", "/"),  # browsers read a backslash as a slash
        ("/\\/evil.example", "/"),
        ("/ok\\..\\x", "/"),
        ("http://evil.example/", "/"),
        ("https:evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("", "/"),
        ("/\x00", "/"),
        ("/\x7f", "/"),
        ("/ünïcode", "/"),  # what a browser sends is percent-encoded; raw text here is not a path we made
        ("/" + "a" * 2048, "/"),
        (None, "/"),
    ],
)
def test_a_login_sends_the_browser_only_to_a_local_path(target, expected):
    assert access.local_target(target) == expected


@pytest.mark.parametrize(
    "remote_addr, forwarded_for, expected",
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not our proxy: its header is the client's own words
        ("127.0.0.2", "198.51.100.1", "127.0.0.2"),  # only gunicorn's forwarded_allow_ips are trusted
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),  # the reverse proxy on this machine
        ("::1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # the last entry is the one the proxy appended
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", " , ", "127.0.0.1"),
        (None, None, "unknown"),
    ],
)
def test_the_client_address_is_the_peers_unless_the_peer_is_the_local_proxy(remote_addr, forwarded_for, expected):
    assert access.client_address(remote_addr, forwarded_for) == expected


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_five_wrong_guesses_in_a_minute_make_the_address_wait_until_the_first_is_a_minute_old():
    clock = Clock()
    throttle = access.Throttle(clock)
    for second in range(5):  # guesses at 0, 1, 2, 3 and 4 s
        clock.now = 1000.0 + second
        assert throttle.wait_seconds("a") == 0
        throttle.failed("a")
    clock.now = 1004.5
    assert throttle.wait_seconds("a") == 56  # until the first guess (1000 s) is 60 s old: 55.5 s, rounded up
    assert throttle.wait_seconds("b") == 0  # another address is not slowed
    clock.now = 1059.9
    assert throttle.wait_seconds("a") == 1
    clock.now = 1060.0  # the first guess is a minute old: one more guess may be tried
    assert throttle.wait_seconds("a") == 0
    throttle.failed("a")
    assert throttle.wait_seconds("a") == 1  # the second guess (1001 s) is a minute old at 1061 s


def test_a_right_token_forgets_the_addresss_wrong_guesses():
    throttle = access.Throttle(Clock())
    for _ in range(4):
        throttle.failed("a")
    throttle.succeeded("a")
    for _ in range(4):
        throttle.failed("a")
    assert throttle.wait_seconds("a") == 0


def test_the_throttle_remembers_a_bounded_number_of_addresses(monkeypatch):
    monkeypatch.setattr(access, "MAX_ADDRESSES", 3)
    clock = Clock()
    throttle = access.Throttle(clock)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    clock.now += 61  # a, b and c are quiet now: forgotten first
    throttle.failed("d")
    assert list(throttle.failures) == ["d"]
    for address in ("e", "f", "g"):  # all active: the one least recently wrong (d) makes room for g
        throttle.failed(address)
    assert list(throttle.failures) == ["e", "f", "g"]


def test_tokens_are_compared_in_constant_time_as_digests_of_equal_length(monkeypatch):
    compared = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(access.hmac, "compare_digest", lambda a, b: compared.append((len(a), len(b))) or real(a, b))
    assert access.token_matches("s3cret", "s3cret") is True
    assert access.token_matches("s", "s3cret") is False
    assert access.token_matches("x" * 10_000, "s3cret") is False
    assert compared == [(32, 32)] * 3  # the length of the guess is not compared either


def test_the_session_key_is_made_once_random_and_readable_by_its_owner_only(tmp_path):
    folder = tmp_path / "logs"
    secret = access.session_secret(folder)
    path = folder / "session.key"
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert access.session_secret(folder) == secret == path.read_text().strip()
    assert access.session_secret(tmp_path / "other") != secret
    assert sorted(os.listdir(folder)) == ["session.key"]  # no temporary file left


def test_workers_starting_together_agree_on_the_session_key(tmp_path):
    for round_number in range(20):
        folder = tmp_path / f"round{round_number}"
        start = threading.Barrier(8)
        secrets = []

        def worker(folder=folder, start=start, secrets=secrets):
            start.wait()
            secrets.append(access.session_secret(folder))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(secrets) == 8 and len(set(secrets)) == 1, secrets
        assert sorted(os.listdir(folder)) == ["session.key"]


def test_a_damaged_session_key_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "session.key").write_text("short\n")
    with pytest.raises(PipelineError, match=r"session key .*session.key is damaged \(not 64 hex digits\): delete it"):
        access.session_secret(tmp_path)


def test_a_session_key_that_cannot_be_written_says_what_to_do(tmp_path):
    (tmp_path / "logs").write_text("a file where the folder should be")
    with pytest.raises(PipelineError, match=r"cannot keep the session key .*: .*; make its folder writable or set"):
        access.session_secret(tmp_path / "logs")


def test_ending_the_sessions_starts_a_new_generation_and_marks_depend_on_it_and_the_token(tmp_path):
    first = access.session_generation(tmp_path)
    assert access.session_generation(tmp_path) == first
    assert (tmp_path / "session.generation").stat().st_mode & 0o777 == 0o600
    access.end_sessions(tmp_path)
    second = access.session_generation(tmp_path)
    assert second != first
    assert (tmp_path / "session.generation").stat().st_mode & 0o777 == 0o600  # as private after a logout
    assert [path.name for path in tmp_path.iterdir()] == ["session.generation"]  # no temporary file left
    marks = {access.session_mark(token, generation) for token in ("t1", "t2") for generation in (first, second)}
    assert len(marks) == 4 and not any("t1" in mark or "t2" in mark for mark in marks)

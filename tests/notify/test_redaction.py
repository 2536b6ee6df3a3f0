"""No secret in any log line, stored error or printed result: webhook tokens from the environment, an SMTP
password from the environment and a whole URL from a file, through failures and successes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.store import Store
from testkit.gateway import FakeClock
from testkit.notify import attempts, notifier, raise_fever, settings
from testkit.receivers import Mailbox, Webhook

TOKEN = "a91f0c2de7b84e55aa19c3d4e5f60718"
PASSWORD = "pw-Zq81rT"
FILE_TOKEN = "f00dfacecafe0123456789abcdef"
WRONG = "wrong-Pw-553"
RECEIVERS_OWN_LOGS = ("mail.log", "asyncio")  # the test's SMTP server logs its side of the dialogue


def test_no_secret_reaches_a_log_line_or_the_attempts(
    store: Store, clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = Webhook()  # nothing listens: every attempt fails, with Apprise's error text
    url_file = tmp_path / "ops.url"
    url_file.write_text(f"json://127.0.0.1:{down.port}/hooks/{FILE_TOKEN}\n")
    env = {"HOOK_TOKEN": TOKEN, "SMTP_PASSWORD": PASSWORD, "SMTP_WRONG": WRONG}
    caplog.set_level(logging.DEBUG)
    with Webhook() as up, Mailbox("gw", PASSWORD) as mailbox:
        section = settings({
            "receivers": {
                "chat-down": {"url": f"json://127.0.0.1:{down.port}/robot/${{HOOK_TOKEN}}"},
                "chat-up": {"url": f"json://127.0.0.1:{up.port}/robot/${{HOOK_TOKEN}}"},
                "mail": {"url": mailbox.url("${SMTP_PASSWORD}", "duty@county.example")},
                "mail-wrong": {"url": mailbox.url("${SMTP_WRONG}", "duty@county.example")},
                "ops": {"url_file": str(url_file)},
                "unset": {"url": "json://127.0.0.1:9/${NOT_SET_ANYWHERE}"},
            },
            "routes": [{"receivers": ["chat-down", "chat-up", "mail", "mail-wrong", "ops", "unset"]}],
        })  # fmt: skip
        n = notifier(store, section, clock, env)
        raise_fever(store, clock, seq=3)
        n.step()
        clock.advance(60_000)
        n.step()
        test_results = [n.test(name) for name in ("chat-down", "ops", "mail")]
        assert len(up.posts) == 1 and len(mailbox.mails) == 2  # the real ones got through (mail: alert + test)
    assert up.posts[0].path == f"/robot/{TOKEN}"  # the secret did reach its receiver
    failed = [a for a in attempts(store) if a[4] == "failed"]
    assert {a[1] for a in failed} == {"chat-down", "mail-wrong", "ops", "unset"}
    assert any("NOT_SET_ANYWHERE" in (a[5] or "") for a in failed)  # the variable is named, its value never
    ours = [r for r in caplog.records if not r.name.startswith(RECEIVERS_OWN_LOGS)]
    texts = [r.getMessage() for r in ours] + [str(a) for a in attempts(store)] + [str(test_results)]
    assert any("failed" in t for t in texts)
    for secret in (TOKEN, PASSWORD, FILE_TOKEN, WRONG):
        assert not [t for t in texts if secret in t], secret

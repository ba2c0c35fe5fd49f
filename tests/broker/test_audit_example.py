"""The README's audit example works in one process over in-memory plugins."""

from __future__ import annotations

import trio.testing

from examples import pubsub
from trimicro.testing import open_cluster


async def test_every_account_creation_reaches_the_audit_trail(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pubsub.trail.clear()
    async with open_cluster(pubsub.accounts, pubsub.audit) as cluster:
        for owner in ("Ann", "Bob"):
            await cluster.client.call("accounts", "Accounts.Create", {"owner": owner})
        await trio.testing.wait_all_tasks_blocked()
    assert [(e.kind, e.subject) for e in pubsub.trail] == [
        ("account.created", "Ann"),
        ("account.created", "Bob"),
    ]

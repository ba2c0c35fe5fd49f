"""The audit example (seed 003-architecture): services publish events, an audit service keeps a
trail of them. Audit nodes share the work through the queue group `audit`; a logger without a
queue sees every event.

Terminal 1:  trimicro run examples.pubsub:accounts
Terminal 2:  trimicro run examples.pubsub:audit        (run it twice: they share the events)
Terminal 3:  trimicro subscribe events                 (sees every event)
Terminal 4:  trimicro call accounts Accounts.Create '{"owner": "Ann"}'
             trimicro publish events '{"kind": "manual", "subject": "hello"}'
"""

from __future__ import annotations

import logging

import attrs

import trimicro

log = logging.getLogger("examples.audit")


@attrs.frozen
class Event:
    kind: str
    subject: str


@attrs.frozen
class CreateAccount:
    owner: str


@attrs.frozen
class Account:
    id: int
    owner: str


accounts = trimicro.Service("accounts")
_next_id = iter(range(1, 1 << 62))


@accounts.endpoint("Accounts.Create")
async def create(req: CreateAccount) -> Account:
    account = Account(next(_next_id), req.owner)
    # Every service publishes what it did; the audit trail is somebody else's concern.
    await trimicro.current_client().publish("events", Event("account.created", req.owner))
    return account


audit = trimicro.Service("audit")
trail: list[Event] = []


@audit.subscribe("events", queue="audit")
async def record(event: Event) -> None:
    message = trimicro.current_message()
    trail.append(event)
    log.info("audit: %s %s (metadata %s)", event.kind, event.subject, dict(message.metadata))

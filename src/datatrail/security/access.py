"""Who acts on a store, from where, and how their reads are audited (:class:`Access`).

Apart from :mod:`datatrail.security.guard` so that a Trail on the embedded store
(every CLI command) builds one without importing the guard and what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datatrail.core.roles import Action, Principal, authorize

Recorder = Callable[..., None]


@dataclass
class Access:
    """Who acts, from where, and how reads and denials are recorded (``recorder`` is the store's
    ``record_access``; None records nothing, as for a remote store whose server records)."""

    principal: Principal
    origin: str = "local"
    recorder: Recorder | None = None
    seen: set[tuple[str, str | None, str]] | None = field(default_factory=set)
    many: Recorder | None = None
    """The store's ``record_accesses`` (several reads in one write), for :meth:`note_all`."""

    def note(self, action: str, target: str | None, outcome: str = "allowed", **details: Any) -> None:
        if self.recorder is None:
            return
        key = (action, target, outcome)
        if self.seen is not None:
            if key in self.seen:
                return
            self.seen.add(key)
        self.recorder(
            actor=self.principal.name,
            action=action,
            target=target,
            outcome=outcome,
            origin=self.origin,
            details=details or None,
        )

    def note_all(self, action: str, targets: list[str]) -> None:
        """:meth:`note` of each allowed read, the entries written at once (a page of a listing)."""
        if self.recorder is None:
            return
        fresh: list[str] = []
        for target in targets:
            key = (action, target, "allowed")
            if self.seen is not None:
                if key in self.seen:
                    continue
                self.seen.add(key)
            fresh.append(target)
        if self.many is None:
            for target in fresh:
                self.recorder(
                    actor=self.principal.name,
                    action=action,
                    target=target,
                    outcome="allowed",
                    origin=self.origin,
                    details=None,
                )
        elif fresh:
            self.many(actor=self.principal.name, action=action, targets=fresh, origin=self.origin)

    def allows(self, action: Action, namespace: str) -> bool:
        return authorize(self.principal, action, namespace)

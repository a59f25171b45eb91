"""The console's footer: Textual's ``Footer``, rebuilt only when the keys it shows change.

Textual's footer recomposes (unmounts and mounts a widget per key, then restyles them) on every bindings signal: each
focus change and each ``refresh_bindings``, which the console sends at every state change of a steering job so that
Escape is offered while one runs. A job's start sends several in a row, and on a 2-core machine with the job's thread
holding the interpreter a recompose took 30–60 ms of the event loop each time. Here the signals that arrive before the
next refresh are served by one check, and the footer recomposes only when the shown keys (key, action, description,
enabled, tooltip) differ from what it shows.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class SteerFooter(Footer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._check_due = False
        self._shown: tuple[tuple[Any, ...], ...] | None = None

    def bindings_changed(self, screen: Any) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._check_due:
            self._check_due = True
            self.call_after_refresh(self._recompose_if_changed)

    def shown_keys(self) -> tuple[tuple[Any, ...], ...]:
        """What the footer would show now: one entry per shown binding."""
        return tuple((b.key, b.action, b.description, bool(enabled), str(tooltip or ""))
                     for (_, b, enabled, tooltip) in self.screen.active_bindings.values() if b.show)

    async def _recompose_if_changed(self) -> None:
        self._check_due = False
        if not self.is_attached:
            return
        keys = self.shown_keys()
        if keys == self._shown:
            return
        self._shown = keys
        await self.recompose()

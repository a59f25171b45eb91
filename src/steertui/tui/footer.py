"""The console's footer: Textual's ``Footer``, rebuilt only when what it shows changes.

Textual's footer recomposes (unmounts and mounts a widget per key, then restyles them) on every bindings signal: each
focus change and each ``refresh_bindings``, which the console sends at every state change of a steering job so that
Escape is offered while one runs. A job's start sends several in a row, and on a 2-core machine with the job's thread
holding the interpreter a recompose took 30–60 ms of the event loop each time. Here a recompose whose result would
equal what is on screen (the same keys, actions, descriptions, enabled flags and tooltips, the same footer options)
does nothing.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class SteerFooter(Footer):
    _shown: tuple[Any, ...] | None = None

    def shown_keys(self) -> tuple[tuple[Any, ...], ...]:
        """What the footer would show now: one entry per shown binding."""
        return tuple((b.key, b.action, b.description, bool(enabled), str(tooltip or ""))
                     for (_, b, enabled, tooltip) in self.screen.active_bindings.values() if b.show)

    async def recompose(self) -> None:
        shown = (self.shown_keys(), self.show_command_palette, self.combine_groups, self.compact)
        if shown == self._shown:
            return
        self._shown = shown
        await super().recompose()

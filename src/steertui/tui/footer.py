"""The console's footer: Textual's ``Footer``, rebuilt only when the keys it shows change.

Textual's footer recomposes (unmounts and mounts a widget per key, restyles them, and the screen lays itself out
again) on every bindings signal: each focus change and each ``refresh_bindings``, which the console sends at every
state change of a steering job so that Escape is offered while one runs. On a 2-core machine a recompose took
20–50 ms of the event loop, and the layout after it another 20–30 ms. Here:

- a recompose whose result would equal what is on screen (the same keys, actions, descriptions, enabled flags and
  tooltips, the same footer options) does nothing;
- when only keys' enabled flags change (``b`` once the data is loaded, ``+``/``-`` and ``e`` once vectors are
  built), the keys on screen are enabled or disabled in place: a restyle of those keys, no rebuild, no layout.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer
from textual.widgets._footer import FooterKey


def _layout(shown: tuple[Any, ...]) -> tuple[Any, ...]:
    """What the footer shows apart from the keys' enabled flags."""
    keys, *options = shown
    return (tuple((key, action, description, tooltip) for key, action, description, _, tooltip in keys), *options)


class SteerFooter(Footer):
    _shown: tuple[Any, ...] | None = None

    def shown_keys(self) -> tuple[tuple[Any, ...], ...]:
        """What the footer would show now: one entry per shown binding."""
        return tuple((b.key, b.action, b.description, bool(enabled), str(tooltip or ""))
                     for (_, b, enabled, tooltip) in self.screen.active_bindings.values() if b.show)

    def _enable_in_place(self, keys: tuple[tuple[Any, ...], ...]) -> bool:
        """Set each key widget's enabled state from ``keys``; False when a widget on screen has no entry."""
        enabled = {(key, action): on for key, action, _, on, _ in keys}
        widgets = [w for w in self.query(FooterKey) if not w.has_class("-command-palette")]
        if not widgets or any((w.key, w.action) not in enabled for w in widgets):
            return False
        for w in widgets:  # as FooterKey's constructor marks a disabled key: dimmed, and a click only rings
            w._disabled = not enabled[w.key, w.action]
            w.set_class(w._disabled, "-disabled")
        return True

    async def recompose(self) -> None:
        shown = (self.shown_keys(), self.show_command_palette, self.combine_groups, self.compact)
        if shown == self._shown:
            return
        if self._shown is not None and _layout(shown) == _layout(self._shown) and self._enable_in_place(shown[0]):
            self._shown = shown
            return
        self._shown = shown
        await super().recompose()

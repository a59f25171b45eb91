"""Command palette: the console's actions that can run right now, searchable by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (name shown, help, action, its parameters as in a binding) — every entry is also a key (see SteerApp.BINDINGS)
COMMANDS = (
    ("Build steering vectors", "one vector per layer from every loaded pair, with diagnostics (b)", "build", ()),
    ("Next tokens and lens", "the selected pair's verdict prompt, baseline against steered (t)", "tokens", ()),
    ("Generate continuations", "the selected pair at its fix site, baseline against steered (g)", "generate", ()),
    ("Evaluate the steering layer", "held-out verdict shift at -a, 0, +a with a random control (e)", "evaluate", ()),
    ("Alpha up", "one step (+)", "alpha", (1,)),
    ("Alpha down", "one step (-)", "alpha", (-1,)),
    ("Alpha zero", "no steering (0)", "alpha", (0,)),
    ("Cycle vector method", "mean-diff, pca, probe for the next build (m)", "cycle_method", ()),
    ("Cycle steering positions", "all, prompt, generated (p)", "cycle_positions", ()),
    ("Probe the layers again", "one real forward (r)", "reprobe", ()),
    ("Cancel the running job", "between chunks, stages or generation steps (Escape)", "cancel", ()),
    ("Zoom the focused pane", "z", "zoom", ()),
    ("Help for the focused pane", "? or F1", "help", ()),
)


class SteerCommands(Provider):
    """Offers only the commands whose ``check_action`` allows them now (no model, no pairs, no vectors: hidden)."""

    def _available(self):
        app = self.app
        for name, help_text, action, params in COMMANDS:
            if app.check_action(action, params):
                call = f"{action}({', '.join(map(repr, params))})" if params else action
                yield name, help_text, partial(app.run_action, call)

    async def discover(self) -> Hits:
        for name, help_text, run in self._available():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._available():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, text=name, help=help_text)

"""The Textual console. Never imports torch or nnsight directly: it calls the engine."""

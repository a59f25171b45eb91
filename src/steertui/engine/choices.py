"""The engine's named choices, declared once, in a module that imports nothing: the command line builds its
parser from them (and stays quick to start), the console cycles through them, and the engine modules that
implement them import them from here."""

METHODS = ("mean-diff", "pca", "probe")  # how a vector is built from pairs (engine.vectors)
READOUTS = ("last", "mean", "diff")  # what one file contributes per layer (engine.activations)
POSITIONS = ("all", "prompt", "generated")  # where a steer is added (engine.steering)
SPLITS = ("pairs", "cwe")  # how the evaluation holds out pairs (engine.evaluate)
ALPHA_SCALES = ("raw", "residual")  # raw: the coefficient itself; residual: in units of ‖h‖/‖v‖ at that layer

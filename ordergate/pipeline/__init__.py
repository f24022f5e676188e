"""The pipeline core: signal types, errors, the stage and broker contracts, the runner, the
journal. It imports nothing of ordergate above it (``ordergate.compose`` assembles it)."""

"""The pipeline core: signal types, errors, stage registry and runner."""

"""CLI commands of the steering pipeline."""


def add_commands(sub, model_flags, fit_flags) -> None:
    return None

"""The secret set a dialect signs one attempt with: the current secret first, then those still in grace."""

from collections.abc import Sequence


def secret_list(secrets: str | Sequence[str]) -> tuple[str, ...]:
    """The secrets as a non-empty tuple, newest first; a lone string is one secret."""
    keys = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not keys:
        raise ValueError("no webhook secret given: pass at least one")
    return keys

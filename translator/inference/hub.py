"""Whether the model hub can be reached, asked once with a short timeout before a download.

Without it, `from_pretrained` spends about 50 s in the hub client's retries (with a WARNING line
each) before it says that a model cannot be had."""

from __future__ import annotations


def unreachable(timeout: float) -> str | None:
    """Why the hub cannot be reached (None: it answers). One HEAD request to its endpoint,
    through the hub client's own session (its proxies and certificates)."""
    from huggingface_hub import constants, get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as exc:  # any transport failure means the same: no hub from here
        return f"{constants.ENDPOINT} cannot be reached ({type(exc).__name__}: {exc})"
    return None

"""Provider adapters: each turns the neutral `ModelRequest` into one wire format and back."""

from .base import Provider

__all__ = ["Provider"]

"""killswitch: stopping AI is one keystroke; resuming is a deliberate act."""

__version__ = "0.3.0"

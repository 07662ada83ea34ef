"""Voice self-service engine for insurers: YAML call flows run over Asterisk ARI."""

__version__ = "0.1.0"

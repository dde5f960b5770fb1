"""neuronetz-gateway: a secure, multi-tenant API gateway in front of Ollama."""

__version__ = "0.1.0"

"""The mock's endpoints, grouped as Ollama's API reference groups them."""

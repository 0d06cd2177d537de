"""Development scripts; the Python ones run from the project root as modules (python -m scripts.screenshots)."""

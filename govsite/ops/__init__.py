"""What operators look at from outside: `/readyz` (health.py), `/metrics` (metrics.py) and their views."""

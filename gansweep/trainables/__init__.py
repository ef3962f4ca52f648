"""What runs inside one trial. Imports neither Ray nor MLflow (except trainable.py)."""

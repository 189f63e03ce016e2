"""The handler template that ships inside every artifact (see lambda_function.py)."""

"""Rendering: turns domain models into HTML reports and tables; a leaf that only reads domain models."""

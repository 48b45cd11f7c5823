"""Importers of checkpoints written by other FLuRKA implementations."""

"""Scripted replay of conversations into the real session: scenario files, a runner, duplex metrics,
timeline plots and reports (``assistant replay`` / ``assistant eval``; docs/replay.md)."""

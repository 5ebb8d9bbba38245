"""Deadlines → reminders: turns each campaign deadline into reminder times and sends them once.

The reminder plan and sender live here (see docs/architecture.md); jobs name module-level functions
and carry only ids, so a restart rebuilds them from the loaded campaigns.
"""

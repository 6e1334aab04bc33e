"""Errors a user can cause and fix."""


class UserError(Exception):
    """Printed by the CLI as one sentence naming the problem and the fix; exit code 2."""

"""The one kind of error a user can fix by changing what they gave (a flag, a file, a bundle).

Every such error derives from :class:`UserError`; ``planet-tiles`` prints it as one line naming the
flag or file and exits 2, instead of a traceback. Anything else that fails is a failed run (exit 1).
This module imports nothing, so the command line can catch these errors without loading their modules.
"""


class UserError(ValueError):
    """Bad input: what is wrong and, where it helps, what to do instead."""

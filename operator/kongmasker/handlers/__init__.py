"""kopf handlers: the only package that imports kopf. Importing it registers them.

Each handler is small: it loads the current object, takes the stack's lock (timers,
daemons and change handlers of one object may otherwise overlap), delegates to
kongmasker.core, posts the Events core returns, and turns errors into kopf retries.
"""

from kongmasker.handlers import backup, lifecycle, monitor, stack

__all__ = ["backup", "lifecycle", "monitor", "stack"]

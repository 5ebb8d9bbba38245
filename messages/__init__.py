"""Every sentence the bot says, one Jinja2 template a file (``<name>.j2``), found by name through
:class:`bot.texts.Texts`. A package only so that the templates ship inside the installed bot
(read with :mod:`importlib.resources`, not from the source tree); it holds no code."""

"""safetybot: the two roles a process runs — the web role (``app``: the ASGI app, with the admin API
in ``admin``) and the worker role (``worker``: reminders, notes, media) — and their parts, a
sub-package each.

``wechat`` — the WeChat edge: the callback protocol, the outbound client and the shared token;
``store`` — the database: engine, tables, migrations, the read view handlers use and the writers;
``campaigns`` — campaign definition files, loading them, units and join codes;
``outbound`` — messages the bot sends on its own: the delivery ledger, the outbox, the media fetcher;
``cli`` — the ``safetybot`` command.
"""

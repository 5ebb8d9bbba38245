"""The coordinators' dashboard at ``/dashboard``: server-rendered pages of a campaign's progress,
totals, units, reports and announcements, behind a login (:mod:`bot.dashboard.sessions`).

:mod:`bot.dashboard.sessions` signs the session cookie and the CSRF tokens, :mod:`bot.dashboard.reads`
reads what the pages show, :mod:`bot.dashboard.chart` lays out the totals' bar chart and
:mod:`bot.dashboard.pages` is the endpoints :mod:`bot.app` routes to.
"""

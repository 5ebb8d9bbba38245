"""The office's files: the notice's own statistics table, summed and per unit, with the liaison
table, the activity records and a status sheet, as one Excel workbook (``workbook.py``), read from
the database by ``bot/store/exports.py``; the signed links that open it (``links.py``)."""

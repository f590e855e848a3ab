"""Reports over what Sightline recognised: per day, per person, processing latency, failures and
a summary, aggregated in SQL and served as JSON and CSV (``/api/v1/reports/``), as pages with
charts (``/reports/``) and by ``manage.py report``.

Layering: analysis reads accounts, media and recognition; nothing imports analysis.
"""

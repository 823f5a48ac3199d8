"""Reconciliation with the ATO: the nightly (or on-demand) walk through the ATO's list of the practice's links,
the drift report and the alerts (models, services, views, URLs and the nightly job)."""

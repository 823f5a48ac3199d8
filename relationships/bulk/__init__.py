"""Bulk linking from a CSV of identifiers: every row validated with the ATO first, a review table, the chosen rows
linked, an outcome report (services, views and their URLs)."""

"""Text: the French and Bambara catalogs, staff overrides, and rendering for each channel."""

from messages.catalog import Catalog, CatalogError, default_catalog, placeholders
from messages.ussd import to_ussd

__all__ = ["Catalog", "CatalogError", "default_catalog", "placeholders", "to_ussd"]

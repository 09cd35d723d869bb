"""marshmallow schemas: the API's shapes only (no database access)."""

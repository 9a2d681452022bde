"""The Store on SQLAlchemy Core: a unit of work (``store``) over repositories, one module
per aggregate, and one dialect module per backend (``sqlite``, ``postgres``)."""

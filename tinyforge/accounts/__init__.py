"""Organizations, users, memberships, projects and API keys: operations over a DB session.

Every function takes an open SQLAlchemy ``Session`` (the caller owns the transaction, one per
API call) and raises :mod:`tinyforge.errors` on bad input. Authorization is not checked here:
:mod:`tinyforge.auth` decides who may call what.
"""

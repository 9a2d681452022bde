"""What a transaction offers services: one small repository protocol per aggregate.

Repositories query and write rows and translate constraints; they hold no use case. The
SQL implementations live in ``storage.sql``.
"""

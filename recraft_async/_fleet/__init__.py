"""The fleet: workers sharing one key's budgets, claims and callbacks through Redis.

Built on the core; coredis is imported only when a ``RedisCoordination`` is opened.
"""

"""Grid cases (网格工单): the case loop, its people and clocks, its KPIs and notifications.

Every change to a case goes through :mod:`cases.actions`.
"""
